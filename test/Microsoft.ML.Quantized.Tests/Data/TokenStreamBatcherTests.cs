using static TorchSharp.torch;

namespace Microsoft.ML.Quantized.Tests;

[TestClass]
public sealed class TokenStreamBatcherTests
{
    [TestMethod]
    public void WindowsAreTimeMajorColumnsWithTargetsShiftedByOne()
    {
        // 0..10 in 2 columns of 5 (token 10 dropped): column 0 = 0..4, column 1 = 5..9
        var tokens = Enumerable.Range(0, 11).ToArray();
        using var batcher = new TokenStreamBatcher(tokens, batchSize: 2, sequenceLength: 3, CPU);
        Assert.AreEqual(5, batcher.Length);
        Assert.AreEqual(2, batcher.WindowCount); // 4 predictable steps in windows of 3 and 1
        Assert.AreEqual(8, batcher.TargetCount);
        var (input, target) = batcher.Window(0);
        CollectionAssert.AreEqual(new long[] { 0, 5, 1, 6, 2, 7 }, input.data<long>().ToArray());
        CollectionAssert.AreEqual(new long[] { 1, 6, 2, 7, 3, 8 }, target.data<long>().ToArray());
        var (lastInput, lastTarget) = batcher.Window(1);
        CollectionAssert.AreEqual(new long[] { 1, 2 }, lastInput.shape);
        CollectionAssert.AreEqual(new long[] { 4, 9 }, lastTarget.data<long>().ToArray());
    }

    [TestMethod]
    public void TooShortStreamsGetAClearError()
    {
        var error = Assert.ThrowsExactly<ArgumentException>(() => new TokenStreamBatcher(new[] { 1, 2, 3 }, 2, 35, CPU));
        StringAssert.Contains(error.Message, "batch size 2");
    }
}
