using System.Globalization;
using System.Text.RegularExpressions;

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
            var rows = Regex.Matches(text, @"^\| (\d+) \| 2 \| (\d+\.\d{3}) \| (\d+\.\d{3}) \| (\d+\.\d{3}) \|", RegexOptions.Multiline);
            CollectionAssert.AreEqual(new[] { "4", "8" }, rows.Select(m => m.Groups[1].Value).ToArray(), text);
            foreach (Match row in rows)
            {
                double bc = double.Parse(row.Groups[2].Value, CultureInfo.InvariantCulture), sr = double.Parse(row.Groups[3].Value, CultureInfo.InvariantCulture);
                Assert.AreEqual(sr / bc, double.Parse(row.Groups[4].Value, CultureInfo.InvariantCulture), 0.002);
            }
            // The per-epoch table's BC validation BPC (batch 4) is the batch table's first BC figure.
            var epochRow = Regex.Match(text, @"^\| 1 \| [\d.]+ % \| [\d.]+ % \| (\d+\.\d{3}) \|", RegexOptions.Multiline);
            Assert.AreEqual(rows[0].Groups[2].Value, epochRow.Groups[1].Value);

            var (bad, message) = SamplesCli.Run("sign-flips", "--batch-sizes", "32,big", "--out", markdown);
            Assert.AreEqual(1, bad, message);
            StringAssert.StartsWith(message, "error: --batch-sizes: 'big' is not a positive whole number");
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }
}
