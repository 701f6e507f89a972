using System.Globalization;

namespace Microsoft.ML.Quantized.Tests.Samples;

/// <summary>The samples CLI's <c>memory</c> command (HitNet question 6): packed and float32 weights, the scorer's state, training peaks.</summary>
[TestClass]
public sealed class MemoryCommandTests
{
    [TestMethod]
    public void A_tiny_run_states_the_weights_the_scorers_state_and_a_training_peak_per_batch_size()
    {
        var folder = Directory.CreateTempSubdirectory("memory-");
        try
        {
            var markdown = Path.Combine(folder.FullName, "reproduction.md");
            var (code, output) = SamplesCli.Run("memory", "--configs", "none,twn", "--activations", "none", "--norms", "none", "--batches", "4,1", "--hidden", "8",
                "--steps", "1", "--out", markdown);
            Assert.AreEqual(0, code, output);
            var text = File.ReadAllText(markdown);
            StringAssert.Contains(text, "<!-- bench:memory -->\n## HitNet question 6: memory for weights and for activations, at batch 1 and in training (character LM, LSTM 1 x 8)");
            StringAssert.Contains(text, "| weights | activations | norm | packed weights | float32 weights | scorer, batch 1 | scorer bytes per character | training, batch 1 | training, batch 4 |");
            var rows = text.Split('\n').Where(l => l.StartsWith("| none | none |", StringComparison.Ordinal) || l.StartsWith("| twn | none |", StringComparison.Ordinal))
                .Select(l => l.Split(" | ")).ToArray();
            Assert.HasCount(2, rows, text);

            // The parameters by hand: embedding V x 64, LSTM 4H x 64 + 4H x H + two 4H biases, decoder H x V + V.
            int v = Vocabulary.FromCharacters(StudyCommandTests.MobyDick()).Count, h = 8;
            long parameters = v * 64L + 4 * h * 64 + 4 * h * h + 8 * h + h * v + v;
            // The scorer's arrays at least: hidden and cell state (H each), two gate scratches (4H each), the embedded input (64), logits and their scratch (V each).
            long arrays = 4L * (2 * h + 8 * h + 64 + 2 * v);
            foreach (var row in rows)
            {
                Assert.AreEqual($"{4 * parameters / 1e3:0.0} KB", row[4], "float32 weights");
                double scorer = Kilobytes(row[5]) * 1e3;
                Assert.IsTrue(scorer >= arrays - 50 && scorer <= arrays + 1000, $"scorer {scorer} bytes against {arrays} bytes of arrays");
                Assert.AreEqual("0", row[6], "scoring a character allocates nothing");
                // Peaks where the system can reset them (Linux's /proc/self/clear_refs), else n/a.
                var training = PeaksCanBeReset() ? new[] { " MB", " MB |" } : new[] { "n/a", "n/a |" };
                Assert.IsTrue(row[7].EndsWith(training[0], StringComparison.Ordinal) && row[8].EndsWith(training[1], StringComparison.Ordinal), string.Join(" | ", row));
            }
            Assert.IsTrue(Kilobytes(rows[1][3]) < Kilobytes(rows[0][3]), "ternary recurrent weights pack smaller than float ones");
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    [TestMethod]
    [DataRow("--batches 0", "error: --batches holds '0': each must be a whole number of sequences, at least 1")]
    [DataRow("--batches ,", "error: --batches needs at least one batch size")]
    [DataRow("--steps 0", "error: --steps must be at least 1; got 0.")]
    [DataRow("--configs nope", "error: ")]
    public void Bad_options_fail_fast_with_one_line(string options, string expected)
    {
        var (code, output) = SamplesCli.Run(["memory", .. options.Split(' ')]);
        Assert.AreEqual(1, code, output);
        StringAssert.StartsWith(output, expected);
        Assert.DoesNotContain("   at ", output, "no stack trace");
    }

    private static bool PeaksCanBeReset()
    {
        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    private static double Kilobytes(string cell) => double.Parse(cell.Split(' ')[0], CultureInfo.InvariantCulture);
}
