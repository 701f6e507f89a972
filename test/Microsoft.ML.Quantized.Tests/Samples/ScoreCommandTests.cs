using System.Diagnostics;
using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Quantized.Tests.MLNet;

namespace Microsoft.ML.Quantized.Tests.Samples;

/// <summary>
/// Models saved with <c>mlContext.Model.Save</c> and scored in a fresh process (the samples CLI's <c>score</c>
/// command, run as a child <c>dotnet</c> process) give exactly the outputs of the process that trained them.
/// </summary>
[TestClass]
public sealed class ScoreCommandTests
{
    private string _folder = "";

    [TestInitialize]
    public void CreateFolder()
    {
        _folder = Path.Combine(Path.GetTempPath(), "score-test-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_folder);
    }

    [TestCleanup]
    public void DeleteFolder() => Directory.Delete(_folder, recursive: true);

    [TestMethod]
    public void Language_model_transform_scores_identically_in_a_fresh_process()
    {
        var ml = new MLContext(seed: 3);
        var train = ml.Data.LoadFromEnumerable(TinyText.Rows(40));
        var rows = TinyText.Rows(8, seed: 5).Concat(TinyText.ShuffledRows(4, seed: 5)).ToArray();
        var model = QuantizedLanguageModelTransformerTests.Pipeline(ml, TinyText.Options(epochs: 2)).Fit(train);
        try
        {
            var scored = model.Transform(ml.Data.LoadFromEnumerable(rows));
            var child = Score(ml, model, train.Schema, ["Text", .. rows.Select(r => r.Text)], "Features", "FeaturesPerplexity");
            AssertEqual(scored.GetColumn<float[]>("Features").ToArray(), child.Select(r => Floats(r[0])).ToArray());
            CollectionAssert.AreEqual(scored.GetColumn<float>("FeaturesPerplexity").ToArray(), child.Select(r => Floats(r[1]).Single()).ToArray());
        }
        finally
        {
            QuantizedSequenceTrainerTests.DisposeModel(model);
        }
    }

    [TestMethod]
    public void Binary_gru_classifier_scores_identically_in_a_fresh_process()
    {
        var ml = new MLContext(seed: 5);
        var train = ml.Data.LoadFromEnumerable(TextData.Rows(60, seed: 1));
        var rows = TextData.Rows(12, seed: 2).ToArray();
        var model = QuantizedSequenceTrainerTests.BinaryPipeline(ml, QuantizedSequenceTrainerTests.Options(epochs: 2), gru: true).Fit(train);
        try
        {
            // The input file leaves out the Label column: scoring does not need it.
            var scored = model.Transform(ml.Data.LoadFromEnumerable(rows));
            var child = Score(ml, model, train.Schema, ["Text", .. rows.Select(r => r.Text)], "Score", "Probability", "PredictedLabel");
            CollectionAssert.AreEqual(scored.GetColumn<float>("Score").ToArray(), child.Select(r => Floats(r[0]).Single()).ToArray());
            CollectionAssert.AreEqual(scored.GetColumn<float>("Probability").ToArray(), child.Select(r => Floats(r[1]).Single()).ToArray());
            CollectionAssert.AreEqual(scored.GetColumn<bool>("PredictedLabel").Select(b => b.ToString()).ToArray(), child.Select(r => r[2]).ToArray());
        }
        finally
        {
            QuantizedSequenceTrainerTests.DisposeModel(model);
        }
    }

    [TestMethod]
    public void Multiclass_lstm_classifier_on_frames_scores_identically_in_a_fresh_process()
    {
        var ml = new MLContext(seed: 5);
        var train = ml.Data.LoadFromEnumerable(FrameData.Rows(60, seed: 1));
        // Values on a 1/64 grid print and parse exactly, so the child reads the very same frames.
        var rows = FrameData.Rows(12, seed: 2).Select(r => new QuantizedSequenceTrainerTests.FrameRow { Label = r.Label, Features = r.Features.Select(x => MathF.Round(x * 64) / 64).ToArray() }).ToArray();
        var model = QuantizedSequenceTrainerTests.MulticlassPipeline(ml, QuantizedSequenceTrainerTests.Options(epochs: 2, frameSize: FrameData.FrameSize)).Fit(train);
        try
        {
            var scored = model.Transform(ml.Data.LoadFromEnumerable(rows));
            var predicted = ml.Transforms.Conversion.MapKeyToValue("PredictedLabel").Fit(scored).Transform(scored).GetColumn<string>("PredictedLabel").ToArray();
            // The vector column spans FrameData.Length fields from "Features[0]"; the label comes first.
            string[] lines = ["Label\t" + string.Join('\t', Enumerable.Range(0, FrameData.Length).Select(i => $"Features[{i}]")),
                .. rows.Select(r => r.Label + "\t" + string.Join('\t', r.Features.Select(x => x.ToString("R", CultureInfo.InvariantCulture))))];
            var child = Score(ml, model, train.Schema, lines, "Score", "PredictedLabel");
            AssertEqual(scored.GetColumn<float[]>("Score").ToArray(), child.Select(r => Floats(r[0])).ToArray());
            CollectionAssert.AreEqual(predicted, child.Select(r => r[1]).ToArray());
        }
        finally
        {
            QuantizedSequenceTrainerTests.DisposeModel(model);
        }
    }

    [TestMethod]
    public void Missing_or_damaged_model_files_are_a_clear_error_and_exit_code_1()
    {
        var input = Path.Combine(_folder, "input.tsv");
        File.WriteAllLines(input, ["Text", "the movie was good"]);
        var missing = Path.Combine(_folder, "missing.zip");
        var (code, error) = Run("score", "--model", missing, "--input", input);
        Assert.AreEqual(1, code, error);
        StringAssert.StartsWith(error, $"error: Cannot load the model '{missing}': Could not find file");

        var damaged = Path.Combine(_folder, "damaged.zip");
        File.WriteAllText(damaged, "not a model");
        (code, error) = Run("score", "--model", damaged, "--input", input);
        Assert.AreEqual(1, code, error);
        StringAssert.StartsWith(error, $"error: Cannot load the model '{damaged}': Failed to open a zip archive");
        Assert.DoesNotContain("   at ", error, "no stack trace");
    }

    [TestMethod]
    public void A_run_that_fails_on_a_row_leaves_no_partial_output()
    {
        var ml = new MLContext(seed: 3);
        var train = ml.Data.LoadFromEnumerable(TinyText.Rows(40));
        var options = TinyText.Options(epochs: 1);
        options.UnknownTokens = UnknownTokenHandling.Strict;
        var model = QuantizedLanguageModelTransformerTests.Pipeline(ml, options).Fit(train);
        try
        {
            string modelPath = Path.Combine(_folder, "model.zip"), input = Path.Combine(_folder, "input.tsv"), output = Path.Combine(_folder, "output.tsv");
            ml.Model.Save(model, train.Schema, modelPath);
            // Row 0 scores; row 1 holds a word the key mapping never saw (a missing key), which the strict model rejects.
            File.WriteAllLines(input, ["Text", TinyText.Rows(1).Single().Text, "zebra"]);
            File.WriteAllText(output, "earlier output");
            var (code, error) = SamplesCli.Run("score", "--model", modelPath, "--input", input, "--out", output);
            Assert.AreEqual(1, code, error);
            StringAssert.StartsWith(error, $"error: Cannot score '{input}'");
            StringAssert.Contains(error, "row 1, token 0");
            Assert.AreEqual("earlier output", File.ReadAllText(output), "the earlier output is left as it was");
            Assert.IsFalse(File.Exists(output + ".partial"), "no partial file left behind");
        }
        finally
        {
            QuantizedSequenceTrainerTests.DisposeModel(model);
        }
    }

    /// <summary>Saves <paramref name="model"/>, scores the input lines with it in a child process and returns the output rows' fields.</summary>
    private string[][] Score(MLContext ml, ITransformer model, DataViewSchema inputSchema, string[] inputLines, params string[] columns)
    {
        string modelPath = Path.Combine(_folder, "model.zip"), input = Path.Combine(_folder, "input.tsv"), output = Path.Combine(_folder, "output.tsv");
        ml.Model.Save(model, inputSchema, modelPath);
        File.WriteAllLines(input, inputLines);
        var (code, error) = Run(["score", "--model", modelPath, "--input", input, "--out", output, "--columns", .. columns]);
        Assert.AreEqual(0, code, error);
        var lines = File.ReadAllLines(output);
        Assert.AreEqual(string.Join('\t', columns), lines[0]);
        Assert.HasCount(inputLines.Length, lines, "a header and one line per input row");
        return lines[1..].Select(line => line.Split('\t')).ToArray();
    }

    private static (int ExitCode, string Output) Run(params string[] arguments) => SamplesCli.Run(arguments);

    private static float[] Floats(string field) => field.Split(' ').Select(x => float.Parse(x, CultureInfo.InvariantCulture)).ToArray();

    private static void AssertEqual(float[][] expected, float[][] actual)
    {
        Assert.HasCount(expected.Length, actual);
        for (int i = 0; i < expected.Length; i++) CollectionAssert.AreEqual(expected[i], actual[i], $"row {i}");
    }
}
