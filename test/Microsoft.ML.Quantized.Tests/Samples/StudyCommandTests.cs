using System.Text.Json;
using System.Text.Json.Nodes;

namespace Microsoft.ML.Quantized.Tests.Samples;

/// <summary>The samples CLI's <c>study</c> command: rows with gate histograms, the slope-sweep figure, resuming.</summary>
[TestClass]
public sealed class StudyCommandTests
{
    [TestMethod]
    public void A_tiny_slope_sweep_records_every_test_characters_gate_outputs_and_draws_them_and_a_rerun_skips_its_rows()
    {
        var folder = Directory.CreateTempSubdirectory("study-");
        try
        {
            var results = Path.Combine(folder.FullName, "rows.jsonl");
            var markdown = Path.Combine(folder.FullName, "reproduction.md");
            string[] arguments = ["study", "--task", "char-lm", "--hidden", "8", "--epochs", "1", "--max-steps", "2", "--configs", "none", "--norms", "none",
                "--slopes", "1,0.5", "--results", results, "--out", markdown];
            var (code, output) = SamplesCli.Run(arguments);
            Assert.AreEqual(0, code, output);

            var rows = File.ReadAllLines(results).Select(l => JsonDocument.Parse(l).RootElement).ToArray();
            Assert.HasCount(2, rows);
            // Every predicted test character passes every gate of the 8 units once: the histograms' counts add up to that, for each gate.
            // Evaluation cuts the test characters into equal streams (the remainder dropped) and predicts all but each stream's first.
            int characters = MobyDickTest().Length, streams = PackedLanguageModel.EvaluationStreams(characters);
            long predicted = streams * (characters / streams - 1L);
            foreach (var row in rows)
            {
                var gates = row.GetProperty("Gates");
                CollectionAssert.AreEqual(new[] { "input", "forget", "candidate", "output", "cell" }, gates.EnumerateObject().Select(g => g.Name).ToArray());
                foreach (var gate in gates.EnumerateObject())
                {
                    var counts = gate.Value.GetProperty("Counts").EnumerateArray().Select(c => c.GetInt64()).ToArray();
                    Assert.HasCount(20, counts);
                    Assert.AreEqual(8 * predicted, counts.Sum(), gate.Name);
                    Assert.AreEqual(gate.Name is "candidate" or "cell" ? -1.0 : 0.0, gate.Value.GetProperty("Low").GetDouble(), gate.Name);
                }
            }
            foreach (var row in rows)
            {
                // One epoch: its mean gradient norm before clipping, at most the largest of its two steps.
                var means = row.GetProperty("GradientNorms").EnumerateArray().Select(v => v.GetDouble()).ToArray();
                var largest = row.GetProperty("LargestGradientNorms").EnumerateArray().Select(v => v.GetDouble()).ToArray();
                Assert.HasCount(1, means);
                Assert.HasCount(1, largest);
                Assert.IsTrue(double.IsFinite(means[0]) && means[0] > 0 && means[0] <= largest[0], $"mean {means[0]}, largest {largest[0]}");
                // The epoch's losses: its validation cross-entropy is the row's (the best epoch of one), its training loss near
                // the untrained model's ln(vocabulary) after two steps.
                var validation = row.GetProperty("ValidationLosses").EnumerateArray().Select(v => v.GetDouble()).ToArray();
                var training = row.GetProperty("TrainingLosses").EnumerateArray().Select(v => v.GetDouble()).ToArray();
                Assert.HasCount(1, validation);
                Assert.HasCount(1, training);
                Assert.AreEqual(row.GetProperty("ValidationCrossEntropy").GetDouble(), validation[0], 0.0);
                Assert.AreEqual(Math.Log(Vocabulary.FromCharacters(MobyDick()).Count), training[0], 0.5, "two steps leave the loss near ln(vocabulary)");
            }
            StringAssert.Matches(File.ReadAllText(markdown), new System.Text.RegularExpressions.Regex(@"\| 1 \| trained \|.*\| (\d+\.\d\d) / \1 \(\d+\.\d\d\) \|"),
                "the gradient-norm cell: first and last epoch (the same one here), the largest in brackets");
            var figure = "reproduction-study-slopes-char-lm-lstm1x8-1ep-2steps-none-none-none.png";
            StringAssert.Contains(File.ReadAllText(markdown), $"- `{figure}`: char-lm, none weights, none activations, none norm, slopes 1, 0.5.");
            Assert.IsTrue(File.Exists(Path.Combine(folder.FullName, figure)), figure);

            var (again, rerun) = SamplesCli.Run(arguments);
            Assert.AreEqual(0, again, rerun);
            StringAssert.Contains(rerun, "already, skipped");
            Assert.HasCount(2, File.ReadAllLines(results));
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    [TestMethod]
    public void Activations_name_what_they_quantize_after_a_colon_and_a_bad_name_fails_before_training()
    {
        var folder = Directory.CreateTempSubdirectory("study-");
        try
        {
            var results = Path.Combine(folder.FullName, "rows.jsonl");
            var markdown = Path.Combine(folder.FullName, "reproduction.md");
            var (code, output) = SamplesCli.Run("study", "--task", "char-lm", "--hidden", "8", "--epochs", "1", "--max-steps", "2", "--configs", "none", "--norms", "none",
                "--activations", "uniform4:cell,uniform4:gates+hidden+cell", "--results", results, "--out", markdown);
            Assert.AreEqual(0, code, output);
            CollectionAssert.AreEqual(new[] { "uniform4:cell", "uniform4:gates+hidden+cell" },
                File.ReadAllLines(results).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("Activations").GetString()).ToArray());
            StringAssert.Contains(File.ReadAllText(markdown), "| none | uniform4:cell | none | 1 | trained |");
            var figure = "reproduction-study-activations-char-lm-lstm1x8-1ep-2steps-none-none.png";
            StringAssert.Contains(File.ReadAllText(markdown), $"- `{figure}`: char-lm, none weights, none norm, slope 1: uniform4:cell, uniform4:gates+hidden+cell.");
            Assert.IsTrue(File.Exists(Path.Combine(folder.FullName, figure)), figure);

            var (bad, message) = SamplesCli.Run("study", "--activations", "uniform4:gates+state", "--results", results, "--out", markdown);
            Assert.AreEqual(1, bad, message);
            StringAssert.StartsWith(message, "error: --activations: 'uniform4:gates+state' names the activation 'state'; join gates, hidden and cell with '+', e.g. gates+cell.");
            var (gru, gruMessage) = SamplesCli.Run("study", "--cell", "gru", "--hidden", "8", "--epochs", "1", "--max-steps", "1", "--configs", "none", "--norms", "none",
                "--activations", "uniform4:cell", "--results", results, "--out", markdown);
            Assert.AreEqual(1, gru, gruMessage);
            StringAssert.Contains(gruMessage, "includes CellState, but a Gru has no cell state");
            Assert.HasCount(2, File.ReadAllLines(results), "nothing trained for the refused rows");
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    [TestMethod]
    public void A_slope_on_some_gates_is_its_own_row_and_its_own_sweep_figure_with_the_slope_1_row()
    {
        var folder = Directory.CreateTempSubdirectory("study-");
        try
        {
            var results = Path.Combine(folder.FullName, "rows.jsonl");
            var markdown = Path.Combine(folder.FullName, "reproduction.md");
            var (code, output) = SamplesCli.Run("study", "--task", "char-lm", "--hidden", "8", "--epochs", "1", "--max-steps", "2", "--configs", "none", "--norms", "none",
                "--slopes", "1,forget=0.5,forget=1,input+candidate=0.5", "--results", results, "--out", markdown);
            Assert.AreEqual(0, code, output);
            Assert.HasCount(1, System.Text.RegularExpressions.Regex.Matches(output, @"already,\s+skipped"), "slope 1 on one gate is the standard cell, trained once: " + output);
            var rows = File.ReadAllLines(results).Select(l => JsonDocument.Parse(l).RootElement).ToArray();
            Assert.HasCount(3, rows);
            Assert.AreEqual(JsonValueKind.Null, rows[0].GetProperty("SlopedGate").ValueKind);
            Assert.AreEqual("forget", rows[1].GetProperty("SlopedGate").GetString());
            Assert.AreEqual(0.5, rows[1].GetProperty("Slope").GetDouble());
            Assert.IsFalse(rows[1].TryGetProperty("SlopeLabel", out _), "the label is not stored");
            Assert.AreEqual("input+candidate", rows[2].GetProperty("SlopedGate").GetString(), "two gates sloped together");
            var text = File.ReadAllText(markdown);
            StringAssert.Contains(text, "| none | none | none | 0.5 forget | trained |");
            StringAssert.Contains(text, "| none | none | none | 0.5 input+candidate | trained |");
            var figure = "reproduction-study-slopes-char-lm-lstm1x8-1ep-2steps-none-none-none-forget.png";
            StringAssert.Contains(text, $"- `{figure}`: char-lm, none weights, none activations, none norm, slopes 1, 0.5 forget.");
            Assert.IsTrue(File.Exists(Path.Combine(folder.FullName, figure)), figure);

            var (bad, message) = SamplesCli.Run("study", "--slopes", "gate=0.5", "--results", results, "--out", markdown);
            Assert.AreEqual(1, bad, message);
            StringAssert.StartsWith(message, "error: --slopes: unknown gate 'gate' (input, forget, candidate, output, cell)");
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    [TestMethod]
    public void Another_seed_is_its_own_row_and_rows_from_before_seeds_read_as_seed_1()
    {
        var folder = Directory.CreateTempSubdirectory("study-");
        try
        {
            var results = Path.Combine(folder.FullName, "rows.jsonl");
            var markdown = Path.Combine(folder.FullName, "reproduction.md");
            string[] run = { "study", "--task", "char-lm", "--hidden", "8", "--epochs", "1", "--max-steps", "2", "--configs", "none", "--norms", "none", "--results", results, "--out", markdown };
            var (code, output) = SamplesCli.Run(run);
            Assert.AreEqual(0, code, output);
            // A row written before rows had seeds: the same row without the property.
            var first = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllLines(results).Single())!.AsObject();
            Assert.AreEqual(1, (int)first["Seed"]!);
            first.Remove("Seed");
            File.WriteAllText(results, first.ToJsonString() + "\n");

            (code, output) = SamplesCli.Run(run.Concat(new[] { "--seeds", "1,2" }).ToArray());
            Assert.AreEqual(0, code, output);
            Assert.HasCount(1, System.Text.RegularExpressions.Regex.Matches(output, @"already,\s+skipped"), "the seed-1 row is there: " + output);
            var rows = File.ReadAllLines(results).Select(l => JsonDocument.Parse(l).RootElement).ToArray();
            Assert.HasCount(2, rows);
            Assert.AreEqual(2, rows[1].GetProperty("Seed").GetInt32());
            Assert.AreNotEqual(rows[0].GetProperty("TestCrossEntropy").GetDouble(), rows[1].GetProperty("TestCrossEntropy").GetDouble(),
                "another seed trains another model");
            var text = File.ReadAllText(markdown);
            StringAssert.Contains(text, "| none | none | none | 1, seed 2 | trained |");
            StringAssert.Contains(text, "| none | none | none | 1 | trained |");

            var (bad, message) = SamplesCli.Run(run.Concat(new[] { "--seeds", "0" }).ToArray());
            Assert.AreEqual(1, bad, message);
            StringAssert.StartsWith(message, "error: --seeds holds '0': each seed must be a whole number from 1, e.g. 1,2,3.");
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    [TestMethod]
    public void Rows_record_their_float_weight_histograms_one_figure_compares_the_quantizers_and_retrain_replaces_a_row()
    {
        var folder = Directory.CreateTempSubdirectory("study-");
        try
        {
            var results = Path.Combine(folder.FullName, "rows.jsonl");
            var markdown = Path.Combine(folder.FullName, "reproduction.md");
            string[] common = ["study", "--task", "char-lm", "--hidden", "8", "--epochs", "1", "--max-steps", "2", "--norms", "none", "--results", results, "--out", markdown];
            var (code, output) = SamplesCli.Run([.. common, "--configs", "none,twn"]);
            Assert.AreEqual(0, code, output);
            var rows = File.ReadAllLines(results).Select(l => JsonNode.Parse(l)!.AsObject()).ToArray();
            Assert.HasCount(2, rows);
            foreach (var row in rows)
            {
                // Embedding 64 into 8 units: W_ih is [32, 64], W_hh [32, 8]; every weight counted once (the tails in the end bins).
                var histograms = row["WeightHistograms"]!.AsObject();
                Assert.AreEqual(32L * 64, histograms["W_ih"]!["Counts"]!.AsArray().Sum(c => c!.GetValue<long>()));
                Assert.AreEqual(32L * 8, histograms["W_hh"]!["Counts"]!.AsArray().Sum(c => c!.GetValue<long>()));
            }
            var figure = "reproduction-study-weights-char-lm-lstm1x8-1ep-2steps-none-none.png";
            StringAssert.Contains(File.ReadAllText(markdown), $"- `{figure}`: char-lm, none activations, none norm, slope 1: none, twn.");
            Assert.IsTrue(File.Exists(Path.Combine(folder.FullName, figure)), figure);

            // An older row without histograms: --retrain trains it again and replaces it in place (the same seed, the same figures).
            double testCrossEntropy = rows[0]["TestCrossEntropy"]!.GetValue<double>();
            rows[0].Remove("WeightHistograms");
            File.WriteAllLines(results, rows.Select(r => r.ToJsonString()));
            var (again, rerun) = SamplesCli.Run([.. common, "--configs", "none", "--retrain"]);
            Assert.AreEqual(0, again, rerun);
            var replaced = File.ReadAllLines(results).Select(l => JsonNode.Parse(l)!.AsObject()).ToArray();
            Assert.HasCount(2, replaced);
            Assert.AreEqual("none", replaced[0]["Weights"]!.GetValue<string>());
            Assert.AreEqual("twn", replaced[1]["Weights"]!.GetValue<string>());
            Assert.IsNotNull(replaced[0]["WeightHistograms"]);
            Assert.AreEqual(testCrossEntropy, replaced[0]["TestCrossEntropy"]!.GetValue<double>(), 1e-9);
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    [TestMethod]
    public void A_row_trains_from_its_own_checkpoint_folder_and_removes_it_once_the_row_is_written()
    {
        var folder = Directory.CreateTempSubdirectory("study-");
        try
        {
            var results = Path.Combine(folder.FullName, "rows.jsonl");
            var markdown = Path.Combine(folder.FullName, "reproduction.md");
            var checkpoints = Path.Combine(folder.FullName, "checkpoints");
            string[] arguments = ["study", "--task", "char-lm", "--hidden", "8", "--epochs", "1", "--max-steps", "2", "--configs", "twn", "--norms", "layer",
                "--slopes", "0.5", "--results", results, "--out", markdown, "--checkpoints", checkpoints];
            // A file in the row's folder that is not a checkpoint: the row must read it (and refuse it) rather than start afresh.
            var rowFolder = Directory.CreateDirectory(Path.Combine(checkpoints, "char-lm-lstm1x8-1ep-2steps-twn-none-layer-0.5"));
            File.WriteAllText(Path.Combine(rowFolder.FullName, "training.checkpoint"), "not a checkpoint");
            var (refused, message) = SamplesCli.Run(arguments);
            Assert.AreNotEqual(0, refused, message);
            StringAssert.Contains(message, "training.checkpoint");
            Assert.IsFalse(File.Exists(results), "no row for a run that did not train");

            rowFolder.Delete(recursive: true);
            var (code, output) = SamplesCli.Run(arguments);
            Assert.AreEqual(0, code, output);
            Assert.HasCount(1, File.ReadAllLines(results));
            Assert.IsFalse(Directory.Exists(rowFolder.FullName), "the finished row's checkpoint is removed");
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    [TestMethod]
    public void Exploding_gradient_norms_render_in_exponent_form()
    {
        var folder = Directory.CreateTempSubdirectory("study-");
        try
        {
            var results = Path.Combine(folder.FullName, "rows.jsonl");
            var markdown = Path.Combine(folder.FullName, "reproduction.md");
            // A finished row, written by hand: the study skips it and renders it.
            File.WriteAllText(results, JsonSerializer.Serialize(new
            {
                Task = "char-lm", Cell = "lstm", Layers = 1, Hidden = 8, Epochs = 2, MaxSteps = 2, Weights = "bc", Normalization = "none",
                Outcome = "trained", BestEpoch = 2, ValidationCrossEntropy = 2.0, TestCrossEntropy = 2.0, BitsPerWeight = 1.0, PackedBytes = 1000L,
                FloatLambda1 = 8.0, QuantizedLambda1 = 90.0, MeanGain = 1.0, Seconds = 1.0, Date = "2026-12-04", Machine = "m", Load = (string?)null,
                Activations = "none", Slope = 1.0, GradientNorms = new[] { 1.2366e28, 1876.5 }, LargestGradientNorms = new[] { 3.2414e29, 12345.6 },
            }) + "\n");
            var (code, output) = SamplesCli.Run("study", "--task", "char-lm", "--hidden", "8", "--epochs", "2", "--max-steps", "2", "--configs", "bc",
                "--norms", "none", "--results", results, "--out", markdown);
            Assert.AreEqual(0, code, output);
            StringAssert.Contains(output, "already, skipped");
            StringAssert.Contains(File.ReadAllText(markdown), "| 90.00 | 1.00 | 1.24E+28 / 1876.50 (3.24E+29) |");
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    [TestMethod]
    public void Sequential_mnist_rows_score_test_accuracy_record_every_test_images_gates_and_keep_one_statistics_set_per_row()
    {
        TinyMnist.With(data =>
        {
            var results = Path.Combine(data, "rows.jsonl");
            var markdown = Path.Combine(data, "reproduction.md");
            var (code, output) = SamplesCli.Run("study", "--task", "smnist", "--data", data, "--hidden", "4", "--epochs", "2", "--configs", "none,twn",
                "--norms", "none,batch,batch-recal", "--results", results, "--out", markdown);
            Assert.AreEqual(0, code, output);
            var rows = File.ReadAllLines(results).Select(l => JsonNode.Parse(l)!.AsObject()).ToArray();
            Assert.HasCount(6, rows);
            var text = File.ReadAllText(markdown);
            StringAssert.Contains(text, "**smnist, LSTM 1 x 4, 2 epoch(s)** (`--task smnist --cell lstm --layers 1 --hidden 4 --epochs 2`)");
            StringAssert.Contains(text, "| best epoch | test accuracy | vs float |");
            double floatAccuracy = rows[0]["TestAccuracy"]!.GetValue<double>();
            foreach (var row in rows)
            {
                // 20 test images of 4 rows: accuracy in twentieths, and every gate of the 4 units sees each of the 4 steps of each image once.
                double accuracy = row["TestAccuracy"]!.GetValue<double>();
                Assert.AreEqual(Math.Round(accuracy * 20), accuracy * 20, 1e-9, $"{accuracy} is not a count of 20 images");
                foreach (var gate in row["Gates"]!.AsObject())
                    Assert.AreEqual(4L * 20 * 4, gate.Value!["Counts"]!.AsArray().Sum(c => c!.GetValue<long>()), gate.Key);
                string versusFloat = (100 * (accuracy - floatAccuracy)).ToString("+0.00;-0.00;0.00", System.Globalization.CultureInfo.InvariantCulture);
                StringAssert.Contains(text, $"| {row["Weights"]} | none | {row["Normalization"]} | 1 | trained | {row["BestEpoch"]} | " +
                    $"{(100 * accuracy).ToString("F2", System.Globalization.CultureInfo.InvariantCulture)} % | {versusFloat} pt |");
            }
            // Per-step batch norm keeps one set of running statistics per image row: 4 steps x 16 features, mean and variance,
            // for W_x x and W_h h, float32, beside each product's 16 gains and 16 biases; not the default 100 steps.
            foreach (int quantized in new[] { 0, 3 })
            {
                Assert.AreEqual((4 * 16 * 2 * 2 + 2 * 16 * 2) * 4L,
                    rows[quantized + 1]["PackedBytes"]!.GetValue<long>() - rows[quantized]["PackedBytes"]!.GetValue<long>(), $"row {quantized + 1}");
                // batch-recal is the same per-step model, validated with statistics re-estimated before each validation.
                var (batch, recalibrated) = (rows[quantized + 1], rows[quantized + 2]);
                Assert.AreEqual("batch-recal", recalibrated["Normalization"]!.GetValue<string>());
                Assert.AreEqual(batch["PackedBytes"]!.GetValue<long>(), recalibrated["PackedBytes"]!.GetValue<long>());
                Assert.AreNotEqual(batch["ValidationCrossEntropy"]!.GetValue<double>(), recalibrated["ValidationCrossEntropy"]!.GetValue<double>());
            }

            var (moby, message) = SamplesCli.Run("study", "--task", "char-lm", "--data", data, "--results", results, "--out", markdown);
            Assert.AreEqual(1, moby, message);
            StringAssert.StartsWith(message, "error: --data does not apply to --task char-lm (the embedded Moby Dick).");
            var (missing, missingMessage) = SamplesCli.Run("study", "--task", "smnist", "--data", Path.Combine(data, "none"), "--results", results, "--out", markdown);
            Assert.AreEqual(1, missing, missingMessage);
            StringAssert.StartsWith(missingMessage, $"error: MNIST folder '{Path.Combine(data, "none")}' does not exist: run build/fetch-data.sh --only mnist, or pass --data DIR.");
        });
    }

    /// <summary>The test part of the samples' embedded Moby Dick: its last 5 % by position.</summary>
    private static string MobyDickTest()
    {
        var text = MobyDick();
        return text[(int)(text.Length * 0.95)..];
    }

    /// <summary>The samples' embedded Moby Dick, read from the samples assembly's resource.</summary>
    internal static string MobyDick()
    {
        var samples = System.Reflection.Assembly.LoadFrom(Path.Combine(AppContext.BaseDirectory, "Microsoft.ML.Quantized.Samples.dll"));
        using var stream = samples.GetManifestResourceStream("moby-dick.txt.gz")!;
        using var gzip = new System.IO.Compression.GZipStream(stream, System.IO.Compression.CompressionMode.Decompress);
        return new StreamReader(gzip).ReadToEnd();
    }
}
