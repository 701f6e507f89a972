using System.Globalization;
using System.Text.RegularExpressions;

namespace Microsoft.ML.Quantized.Tests.Samples;

/// <summary>The samples CLI's <c>bn-recalibrate</c> command: test BPC before and after re-estimating batch norm's statistics.</summary>
[TestClass]
public sealed class BatchNormRecalibrationCommandTests
{
    [TestMethod]
    public void A_tiny_run_writes_one_row_per_activation_quantizer_before_and_after()
    {
        var folder = Directory.CreateTempSubdirectory("bn-recalibrate-");
        try
        {
            var markdown = Path.Combine(folder.FullName, "reproduction.md");
            var (code, output) = SamplesCli.Run("bn-recalibrate", "--hidden", "8", "--epochs", "1", "--max-steps", "2", "--windows", "2", "--out", markdown);
            Assert.AreEqual(0, code, output);
            var rows = Regex.Matches(File.ReadAllText(markdown), @"^\| (\w+) \| ([\d.]+) \| ([\d.]+) \| (\d+) \|", RegexOptions.Multiline);
            Assert.HasCount(2, rows);
            CollectionAssert.AreEqual(new[] { "btq", "none" }, rows.Select(r => r.Groups[1].Value).ToArray());
            foreach (Match row in rows)
            {
                // Two steps from a uniform start: near log2 of the corpus's character count either way.
                foreach (var bpc in new[] { row.Groups[2].Value, row.Groups[3].Value }.Select(v => double.Parse(v, CultureInfo.InvariantCulture)))
                    Assert.IsTrue(bpc > 3 && bpc < 8, $"{row.Value}: {bpc}");
                Assert.AreEqual("2", row.Groups[4].Value, "--windows caps the pass");
            }

            var (bad, message) = SamplesCli.Run("bn-recalibrate", "--windows", "-1", "--out", markdown);
            Assert.AreEqual(1, bad, message);
            StringAssert.StartsWith(message, "error: --windows must be 0 (one pass) or more; got -1.");
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }
}
