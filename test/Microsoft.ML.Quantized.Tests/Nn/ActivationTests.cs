using TorchSharp;
using static Microsoft.ML.Quantized.Tests.Quantizers.QuantizerTestUtil;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized.Tests.Nn;

[TestClass]
public sealed class ActivationTests
{
    [TestMethod]
    public void SlopedSigmoid_DividesBySlope()
    {
        using var scope = torch.NewDisposeScope();
        var x = torch.tensor(new float[] { 0f, 1f, -1f, 0.25f });
        // sigma(x / 0.5) = sigma(2x): 0.5, sigma(2), sigma(-2), sigma(0.5).
        AreClose(new float[] { 0.5f, 0.8807971f, 0.1192029f, 0.6224593f }, new SlopedSigmoid(0.5).forward(x), 1e-6);
        // lambda = 2 is flatter: sigma(0.5) at x = 1.
        AreClose(new float[] { 0.6224593f }, SlopedSigmoid.Apply(torch.tensor(new float[] { 1f }), 2.0), 1e-6);
        CollectionAssert.AreEqual(Values(torch.sigmoid(x)), Values(new SlopedSigmoid().forward(x)), "lambda 1 is the plain sigmoid");
    }

    [TestMethod]
    public void SlopedTanh_DividesBySlope()
    {
        using var scope = torch.NewDisposeScope();
        var x = torch.tensor(new float[] { 0f, 0.5f, -0.25f });
        // tanh(x / 0.5): 0, tanh(1), tanh(-0.5).
        AreClose(new float[] { 0f, 0.7615942f, -0.4621172f }, new SlopedTanh(0.5).forward(x), 1e-6);
        CollectionAssert.AreEqual(Values(torch.tanh(x)), Values(SlopedTanh.Apply(x, 1.0)), "lambda 1 is the plain tanh");
    }

    [TestMethod]
    public void SlopedActivations_GradientIsScaledByOneOverLambda()
    {
        using var scope = torch.NewDisposeScope();
        var x = torch.zeros(1).requires_grad_(true);
        SlopedTanh.Apply(x, 0.25).sum().backward();
        // d/dx tanh(x / lambda) at 0 = 1 / lambda.
        Assert.AreEqual(4f, x.grad!.item<float>(), 1e-6);
    }

    [TestMethod]
    public void Slopes_OutOfRange_AreRejected()
    {
        foreach (var bad in new[] { 0.0, -1.0, 4.5, double.NaN })
        {
            var e = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new SlopedSigmoid(bad));
            StringAssert.Contains(e.Message, "(0, 4]");
            Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new SlopedTanh(bad));
        }
        Assert.AreEqual(4.0, new SlopedTanh(4.0).Lambda);
    }
}
