using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized.Tests;

[TestClass]
public sealed class SmokeTests
{
    [TestMethod]
    public void LibTorchLoads()
    {
        using var x = randn(3, 4);
        using var lstm = nn.LSTM(4, 5);
        var (y, h, c) = lstm.forward(x.unsqueeze(1));
        Assert.AreEqual(5, y.shape[2]);
        var cu = torch.jit.compile("def f(a, b):\n    return a + b\n");
        var r = (Tensor)cu.invoke("f", x, x);
        Assert.AreEqual(2 * x[0, 0].item<float>(), r[0, 0].item<float>(), 1e-6);
    }
}
