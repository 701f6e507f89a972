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
}
