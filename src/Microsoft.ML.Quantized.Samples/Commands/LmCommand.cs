using System.Diagnostics;
using System.Text.RegularExpressions;
using Microsoft.ML;
using Microsoft.ML.Data;
using Spectre.Console;

namespace Microsoft.ML.Quantized.Samples.Commands;

/// <summary>
/// The language-model transform inside a full ML.NET pipeline: Moby Dick sentences -> TokenizeIntoWords ->
/// MapValueToKey -> QuantizedLstm, then test perplexity, the most surprising test sentences by the per-row
/// perplexity column (an anomaly score), generated text, the packed size, and a save/load round trip through
/// an ML.NET model file. Writes the <c>lm</c> section of docs/benchmarks.md.
/// </summary>
internal static class LmCommand
{
    private const string SectionStart = "<!-- bench:lm -->";
    private const string SectionEnd = "<!-- /bench:lm -->";

    public static System.CommandLine.Command Create()
    {
        var epochs = new System.CommandLine.Option<int>("--epochs") { Description = "Epochs.", DefaultValueFactory = _ => 3 };
        var hidden = new System.CommandLine.Option<int>("--hidden") { Description = "LSTM hidden units (the feature width).", DefaultValueFactory = _ => 256 };
        var quantizer = new System.CommandLine.Option<string>("--quantizer") { Description = "Weight quantizer registry name (none, twn, bc, alt2, uniform4, ...).", DefaultValueFactory = _ => "twn" };
        var output = new System.CommandLine.Option<FileInfo>("--out") { Description = "Markdown file to write (its lm section is replaced).", DefaultValueFactory = _ => new FileInfo("docs/benchmarks.md") };
        var save = new System.CommandLine.Option<FileInfo?>("--save") { Description = "Keep the fitted pipeline here as an ML.NET model zip (score rows with it by the score command)." };
        var command = new System.CommandLine.Command("lm", "The QuantizedLstm language-model transform in an ML.NET pipeline on Moby Dick: perplexity, anomaly scores, generation, save/load.")
        {
            epochs, hidden, quantizer, output, save,
        };
        command.SetAction(parse => Run(parse.GetValue(epochs), parse.GetValue(hidden), parse.GetValue(quantizer)!, parse.GetValue(output)!, parse.GetValue(save)));
        return command;
    }

    private static int Run(int epochs, int hidden, string quantizerName, FileInfo output, FileInfo? save)
    {
        var load = BenchmarkCommand.LoadAverage();
        var sentences = Regex.Split(EmbeddedCorpus.MobyDick().ToLowerInvariant(), @"(?<=[.!?])\s+")
            .Select(s => Regex.Replace(s, @"\s+", " ").Trim())
            .Where(s => s.Split(' ').Length >= 3)
            .ToArray();
        int a = sentences.Length * 90 / 100, b = sentences.Length * 95 / 100;
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(sentences[..a].Select(s => new Sentence { Text = s }));
        var valid = ml.Data.LoadFromEnumerable(sentences[a..b].Select(s => new Sentence { Text = s }));
        var test = ml.Data.LoadFromEnumerable(sentences[b..].Select(s => new Sentence { Text = s }));
        AnsiConsole.MarkupLine($"Moby Dick: {a:N0} training sentences, {b - a:N0} validation, {sentences.Length - b:N0} test.");

        var prep = ml.Transforms.Text.TokenizeIntoWords("Tokens", "Text", new[] { ' ', ',', ';', ':', '"', '(', ')' })
            .Append(ml.Transforms.Conversion.MapValueToKey("Tokens", maximumNumberOfKeys: 10_000))
            .Fit(train);
        var options = new QuantizedRecurrentLanguageModelOptions { ValidationData = prep.Transform(valid) };
        options.Model.Recurrent.HiddenSize = hidden;
        options.Model.Recurrent.Dropout = 0.3;
        options.Model.EmbeddingDropout = 0.3;
        options.Model.Recurrent.WeightQuantizer = QuantizerRegistry.Parse(quantizerName);
        options.Model.Recurrent.Normalization = options.Model.Recurrent.WeightQuantizer.Kind != QuantizerKind.None ? RecurrentNormalization.Weight : RecurrentNormalization.None;
        options.Training.Epochs = epochs;
        var clock = Stopwatch.StartNew();
        var lm = ConsoleProgress.Run($"QuantizedLstm ({quantizerName})", progress =>
        {
            options.Progress = progress;
            return ml.Transforms.QuantizedLstm("Features", "Tokens", options).Fit(prep.Transform(train));
        });
        double seconds = clock.Elapsed.TotalSeconds;
        var model = prep.Append(lm);

        var keyedTest = prep.Transform(test);
        var evaluation = lm.Evaluate(keyedTest);
        var size = lm.SizeReport();
        var scored = ml.Data.CreateEnumerable<Scored>(model.Transform(test), reuseRowObject: false).ToList();
        var surprising = scored.Where(r => !float.IsNaN(r.FeaturesPerplexity)).OrderByDescending(r => r.FeaturesPerplexity).Take(3).ToList();
        var generated = lm.Generate("call me ishmael", 30, temperature: 0.8, seed: 1);

        var path = save?.FullName ?? Path.Combine(Path.GetTempPath(), $"mlqz-lm-{Environment.ProcessId}.zip");
        ml.Model.Save(model, train.Schema, path);
        var reloaded = new MLContext(seed: 1).Model.Load(path, out _);
        var again = ml.Data.CreateEnumerable<Scored>(reloaded.Transform(test), reuseRowObject: false).First();
        bool identical = again.Features.SequenceEqual(scored[0].Features) && again.FeaturesPerplexity.Equals(scored[0].FeaturesPerplexity);
        (reloaded as IDisposable)?.Dispose(); // frees the reloaded transformer's torch tensors
        long zipBytes = new FileInfo(path).Length;
        if (save is null) File.Delete(path);

        var table = new Table().AddColumns("quantity", "value");
        table.AddRow("test perplexity", $"{evaluation.Perplexity:F1} ({evaluation.TokenCount:N0} tokens)");
        table.AddRow("LSTM weights", $"{size.BitsPerQuantizedWeight:F2} bits/weight");
        table.AddRow("packed model", QuickstartCommand.Bytes(size.PackedBytes) + $" (float32 {QuickstartCommand.Bytes(size.Float32Bytes)})");
        table.AddRow("ML.NET model zip", QuickstartCommand.Bytes(zipBytes));
        table.AddRow("training time", $"{seconds:F0} s");
        table.AddRow("reloaded model, same outputs", identical ? "yes" : "NO");
        AnsiConsole.Write(table);
        AnsiConsole.Write(new Panel(Markup.Escape("call me ishmael " + generated)).Header("generated"));
        foreach (var r in surprising) AnsiConsole.MarkupLine($"[yellow]{r.FeaturesPerplexity,8:F0}[/] {Markup.Escape(Clip(r.Text))}");
        if (save is not null) AnsiConsole.MarkupLine(Markup.Escape($"Saved the pipeline to {path}; score a tab-separated file with a Text column: score --model {path} --input rows.tsv"));

        var markdown = $"""
            ## Language-model transform in an ML.NET pipeline (Moby Dick words)

            `TokenizeIntoWords -> MapValueToKey (10k keys) -> QuantizedLstm` on Moby Dick sentences (90/5/5 split by position), LSTM 1x{hidden}, weights `{quantizerName}`{(options.Model.Recurrent.Normalization == RecurrentNormalization.Weight ? " + weight norm" : "")}, dropout 0.3, SGD lr 20 (PTB recipe), {epochs} epoch(s). {BenchmarkCommand.Provenance(load)}

            | quantity | value |
            |---|---|
            | test perplexity | {evaluation.Perplexity:F1} ({evaluation.TokenCount:N0} tokens) |
            | LSTM bits/weight | {size.BitsPerQuantizedWeight:F2} |
            | packed model | {QuickstartCommand.Bytes(size.PackedBytes)} (float32 {QuickstartCommand.Bytes(size.Float32Bytes)}) |
            | ML.NET model zip | {QuickstartCommand.Bytes(zipBytes)} |
            | training time | {seconds:F0} s |
            | reloaded in a fresh MLContext, identical outputs | {(identical ? "yes" : "no")} |

            Most surprising test sentences by the `FeaturesPerplexity` column: {string.Join("; ", surprising.Select(r => $"{r.FeaturesPerplexity:F0} \"{Clip(r.Text)}\""))}.

            """;
        BenchmarkCommand.WriteSection(output, markdown, SectionStart, SectionEnd);
        lm.Dispose();
        return identical ? 0 : 1;
    }

    private static string Clip(string text) => text.Length <= 70 ? text : text[..67] + "...";

    private sealed class Sentence
    {
        public string Text { get; set; } = "";
    }

    private sealed class Scored
    {
        public string Text { get; set; } = "";

        [VectorType]
        public float[] Features { get; set; } = Array.Empty<float>();

        public float FeaturesPerplexity { get; set; }
    }
}
