namespace Microsoft.ML.Quantized.Tests.Samples;

/// <summary>The samples CLI's <c>kure</c> command rejects bad options before any training, with one line naming the option.</summary>
[TestClass]
public sealed class KureCommandTests
{
    [TestMethod]
    [DataRow("--qat-step foo", "error: --qat-step 'foo': use max")]
    [DataRow("--task nope", "error: --task 'nope': use moby, smnist or brown.")]
    [DataRow("--task moby --data /tmp", "error: --data does not apply to --task moby")]
    [DataRow("--task brown --train-count 10", "error: --train-count applies to --task smnist only, not to 'brown'.")]
    [DataRow("--max-steps 0", "error: --max-steps and --fine-tune-steps must be at least 1 and --qat-steps at least 0; got 0,")]
    [DataRow("--qat-steps -1", "error: --max-steps and --fine-tune-steps must be at least 1 and --qat-steps at least 0;")]
    [DataRow("--lambda -1", "error: --lambda must be a finite number > 0 (the paper uses 1.0); got -1.")]
    [DataRow("--hidden 0", "error: --hidden must be at least 1; got 0.")]
    [DataRow("--test-tokens -5", "error: --test-tokens must be 0 (the whole test set) or more; got -5.")]
    [DataRow("--task smnist --test-tokens 100", "error: --test-tokens applies to --task moby and brown")]
    [DataRow("--task smnist --data /no/such/folder", "error: MNIST folder '/no/such/folder' does not exist: run build/fetch-data.sh --only mnist, or pass --data DIR.")]
    [DataRow("--task brown --data /no/such/folder", "error: Data folder '/no/such/folder' does not exist: run build/fetch-data.sh first, or pass --data DIR.")]
    public void Bad_options_fail_fast_with_one_line(string options, string expected)
    {
        var (code, output) = SamplesCli.Run(["kure", .. options.Split(' ')]);
        Assert.AreEqual(1, code, output);
        StringAssert.StartsWith(output, expected);
        Assert.DoesNotContain("   at ", output, "no stack trace");
        Assert.DoesNotContain("Written to", output, "nothing written");
    }

    [TestMethod]
    public void A_tiny_run_writes_its_section_with_the_three_fine_tunings_and_both_kure_models_statistics_and_row_steps_their_own()
    {
        var file = Path.Combine(Path.GetTempPath(), $"kure-{Guid.NewGuid():N}.md");
        File.WriteAllText(file, "before\n<!-- bench:kure -->\nold\n<!-- /bench:kure -->\nafter\n");
        try
        {
            var (code, output) = SamplesCli.Run(["kure", "--hidden", "8", "--max-steps", "2", "--fine-tune-steps", "1", "--qat-steps", "1",
                "--test-tokens", "300", "--out", file]);
            Assert.AreEqual(0, code, output);
            var text = File.ReadAllText(file);
            StringAssert.StartsWith(text, "before\n<!-- bench:kure -->\n## KURE: one float model, many bit widths (Moby Dick character LM)");
            StringAssert.EndsWith(text, "<!-- /bench:kure -->\nafter\n");
            Assert.DoesNotContain("old", text);
            StringAssert.Contains(text, "| weights | trained | + fine-tune, no KURE | + fine-tune, KURE (lambda 1) | + fine-tune, KURE per row (lambda 1) |");
            StringAssert.Contains(text, "| weights | 4-bit QAT, no KURE | 4-bit QAT, KURE (lambda 1) | 4-bit QAT, KURE per row (lambda 1) |");
            StringAssert.Contains(text, "### Weight and gate statistics after fine-tuning with KURE (lambda 1)");
            StringAssert.Contains(text, "### Weight and gate statistics after fine-tuning with KURE per row (lambda 1)");
            StringAssert.Contains(text, "| mean row kurtosis of the recurrent weights |");
            StringAssert.Contains(text, "on the first 300 of");
            StringAssert.Contains(text, "| 3-bit (`uniform3`) |");

            // One step per row: its own section after the first, row quantizers in both parts.
            (code, output) = SamplesCli.Run(["kure", "--hidden", "8", "--max-steps", "2", "--fine-tune-steps", "1", "--qat-steps", "1",
                "--test-tokens", "300", "--row-steps", "--out", file]);
            Assert.AreEqual(0, code, output);
            var rows = File.ReadAllText(file);
            StringAssert.StartsWith(rows, text.TrimEnd('\n'), "the per-tensor section is kept");
            StringAssert.EndsWith(rows, "<!-- /bench:kure-rows -->\n");
            var section = rows[rows.IndexOf("<!-- bench:kure-rows -->", StringComparison.Ordinal)..];
            StringAssert.Contains(section, "## KURE: one float model, many bit widths (Moby Dick character LM, one step per row)");
            StringAssert.Contains(section, "uniform symmetric, one step per weight row (`-row`)");
            StringAssert.Contains(section, "| 3-bit (`uniform3-row`) |");
            StringAssert.Contains(section, "| 5-bit (`uniform5-mse-row`) |");
        }
        finally
        {
            File.Delete(file);
        }
    }
}
