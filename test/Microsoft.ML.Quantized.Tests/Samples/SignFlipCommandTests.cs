using System.Globalization;
using System.Text.RegularExpressions;
using Microsoft.ML.Quantized.Samples.Reproduction;

namespace Microsoft.ML.Quantized.Tests.Samples;

/// <summary>The sign-flips command (Li et al. 2017 on an LSTM) end to end on a tiny run.</summary>
[TestClass]
public sealed class SignFlipCommandTests
{
    [TestMethod]
    public void Several_batch_sizes_add_a_table_comparing_both_methods_at_each()
    {
        var folder = Directory.CreateTempSubdirectory("sign-flips-");
        try
        {
            var markdown = Path.Combine(folder.FullName, "reproduction.md");
            var (code, output) = SamplesCli.Run("sign-flips", "--epochs", "1", "--max-steps", "2", "--hidden", "8", "--batch-sizes", "4,8", "--out", markdown);
            Assert.AreEqual(0, code, output);
            var text = File.ReadAllText(markdown);
            StringAssert.Contains(text, "batch 4 x 100 characters", "the per-epoch table is the first batch size's");
            // Two steps of each batch size (the cap), then: both methods' best validation BPC and their ratio.
            var rows = Regex.Matches(text, @"^\| (\d+) \| 1 \| 2 \| (\d+\.\d{3}) \| (\d+\.\d{3}) \| (\d+\.\d{3}) \|", RegexOptions.Multiline);
            CollectionAssert.AreEqual(new[] { "4", "8" }, rows.Select(m => m.Groups[1].Value).ToArray(), text);
            foreach (Match row in rows)
            {
                double bc = double.Parse(row.Groups[2].Value, CultureInfo.InvariantCulture), sr = double.Parse(row.Groups[3].Value, CultureInfo.InvariantCulture);
                Assert.AreEqual(sr / bc, double.Parse(row.Groups[4].Value, CultureInfo.InvariantCulture), 0.002);
            }
            // The per-epoch table's BC validation BPC (batch 4) is the batch table's first BC figure.
            var epochRow = Regex.Match(text, @"^\| 1 \| [\d.]+ % \| [\d.]+ % \| (\d+\.\d{3}) \|", RegexOptions.Multiline);
            Assert.AreEqual(rows[0].Groups[2].Value, epochRow.Groups[1].Value);

            Assert.IsTrue(File.Exists(Path.Combine(folder.FullName, "reproduction-sign-flips.png")));

            // At an equal step budget under a cap of 2 steps per epoch every batch size takes the first one's 2 epochs (the
            // uncapped arithmetic is StepBudget's test), in a section of its own beside the first one.
            var (equal, equalOutput) = SamplesCli.Run("sign-flips", "--epochs", "2", "--max-steps", "2", "--hidden", "8", "--batch-sizes", "4,8", "--equal-steps", "--out", markdown);
            Assert.AreEqual(0, equal, equalOutput);
            text = File.ReadAllText(markdown);
            StringAssert.Contains(text, "<!-- bench:sign-flips -->");
            StringAssert.Contains(text, "<!-- bench:sign-flips-steps -->\n## Training quantized nets (Li et al. 2017): sign changes of BinaryConnect vs stochastic rounding in an LSTM, batch sizes at an equal step budget");
            var equalRows = Regex.Matches(text[text.IndexOf("sign-flips-steps", StringComparison.Ordinal)..], @"^\| (\d+) \| (\d+) \| (\d+) \| \d+\.\d{3} \|", RegexOptions.Multiline);
            CollectionAssert.AreEqual(new[] { "4 2 2", "8 2 2" }, equalRows.Select(m => $"{m.Groups[1]} {m.Groups[2]} {m.Groups[3]}").ToArray(), text);
            Assert.IsTrue(File.Exists(Path.Combine(folder.FullName, "reproduction-sign-flips-steps.png")));

            var (bad, message) = SamplesCli.Run("sign-flips", "--batch-sizes", "32,big", "--out", markdown);
            Assert.AreEqual(1, bad, message);
            StringAssert.StartsWith(message, "error: --batch-sizes: 'big' is not a positive whole number");
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    [TestMethod]
    public void An_equal_step_budget_gives_larger_batches_more_epochs()
    {
        // 1,000,000 characters in 32 columns of 31,250: (31,250 - 1) targets in windows of 100 = 313 steps; at 128, 7,812
        // per column = 79 steps; a cap of 50 steps per epoch binds at 32, not at 128.
        Assert.AreEqual(313, StepBudget.StepsPerEpoch(1_000_000, 32, 100, 0));
        Assert.AreEqual(79, StepBudget.StepsPerEpoch(1_000_000, 128, 100, 0));
        Assert.AreEqual(50, StepBudget.StepsPerEpoch(1_000_000, 32, 100, 50));
        Assert.AreEqual(79, StepBudget.StepsPerEpoch(1_000_000, 128, 100, 100));
        // 4 epochs of 313 steps = 1,252 steps: 1,252 / 79 = 15.8 -> 16 epochs at batch 128; halves round up; never below 1.
        Assert.AreEqual(16, StepBudget.Epochs(4 * 313, 79));
        Assert.AreEqual(3, StepBudget.Epochs(5, 2));
        Assert.AreEqual(1, StepBudget.Epochs(10, 400));
    }
}
