using System.Text.Json;

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
