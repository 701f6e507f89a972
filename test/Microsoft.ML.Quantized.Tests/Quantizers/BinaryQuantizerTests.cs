using TorchSharp;
using static Microsoft.ML.Quantized.Tests.Quantizers.QuantizerTestUtil;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized.Tests.Quantizers;

[TestClass]
public sealed class BinaryQuantizerTests
{
    [TestMethod]
    public void BinaryConnect_SignWithPositiveZero_AndIdentityStraightThrough()
    {
        using var scope = torch.NewDisposeScope();
        var w = Matrix(2, 3, 0.5f, -0.3f, 0f, 2f, -1.5f, 1f);
        var c = Matrix(2, 3, 1, 2, 3, 4, 5, 6);
        var (q, grad) = ForwardBackward(new BinaryConnectQuantizer(), w, c);
        AreClose(new float[] { 1, -1, 1, 1, -1, 1 }, q, 0);
        // The gradient with respect to the binary weight reaches every shadow weight (Algorithm 1; the clip to [-1, 1]
        // after each step keeps them in range, see ShadowWeightClippingTests).
        AreClose(new float[] { 1, 2, 3, 4, 5, 6 }, grad, 0);
    }

    [TestMethod]
    public void StochasticBinary_EvalIsSign_TrainingIsBinaryAndUnbiased()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(1234);
        var quantizer = new StochasticBinaryQuantizer();
        var pattern = new float[] { -0.8f, -0.3f, 0f, 0.4f, 0.9f, 1.5f, -1.5f };
        var w = torch.tensor(pattern).repeat(20000, 1); // [20000, 7], one value per column

        quantizer.eval();
        AreClose(new float[] { -1, -1, 1, 1, 1, 1, -1 }, quantizer.forward(w[0].unsqueeze(0)), 0);

        quantizer.train();
        var q = quantizer.forward(w);
        Assert.IsTrue((q.abs() == 1).all().item<bool>(), "training output must be +-1");
        // E[q] = 2 p - 1 = w on [-1, 1]; saturates at +-1 outside. Std of each mean <= 1/sqrt(20000) = 0.007.
        var mean = Values(q.mean(new long[] { 0 }));
        AreClose(new float[] { -0.8f, -0.3f, 0f, 0.4f, 0.9f, 1f, -1f }, mean, 0.03, "sample mean");
        AreClose(new float[] { 1f, -1f }, mean[5..], 0, "saturated columns are deterministic");
    }

    /// <summary>
    /// BinaryConnect Section 2.6: stochastic BinaryConnect is evaluated with the real-valued weights. sbc-real evaluates
    /// and packs them as they are (float32); sbc evaluates and packs their signs; both train with binary draws.
    /// </summary>
    [TestMethod]
    public void StochasticBinary_RealValuedEvaluation_EvaluatesAndPacksTheShadowWeights()
    {
        using var scope = torch.NewDisposeScope();
        var w = Matrix(1, 4, 0.3f, -0.6f, 0f, 1f);
        var real = Create("sbc-real");
        var sign = Create("sbc");
        real.eval();
        sign.eval();
        AreClose(new float[] { 0.3f, -0.6f, 0f, 1f }, real.forward(w), 0);
        AreClose(new float[] { 1f, -1f, 1f, 1f }, sign.forward(w), 0);

        var packed = real.Encode(w);
        Assert.AreEqual(CodeLayout.Float, packed.Layout);
        Assert.AreEqual(32, real.Bits);
        AreClose(new float[] { 0.3f, -0.6f, 0f, 1f }, packed.DecodeAll(), 0);
        Assert.AreEqual(CodeLayout.Sign, sign.Encode(w).Layout);

        real.train();
        var draws = Values(real.forward(w));
        Assert.IsTrue(draws.All(v => v is 1f or -1f), "training still draws binary weights");
    }

    [TestMethod]
    public void StochasticBinary_IdentityStraightThrough()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(7);
        var w = Matrix(1, 4, 0.2f, -0.7f, 1.2f, -3f);
        var c = Matrix(1, 4, 1, 2, 3, 4);
        var (_, grad) = ForwardBackward(new StochasticBinaryQuantizer(), w, c);
        AreClose(new float[] { 1, 2, 3, 4 }, grad, 0);
    }

    [TestMethod]
    public void BinaryWeightNet_PerTensorAndPerRowAlpha()
    {
        using var scope = torch.NewDisposeScope();
        var w = Matrix(2, 2, 0.5f, -1.0f, 2.0f, -0.5f);
        var c = Matrix(2, 2, 1, 2, 3, 4);
        // Per tensor: alpha = mean |w| = 1.
        var (q, grad) = ForwardBackward(new BinaryWeightNetQuantizer(), w, c);
        AreClose(new float[] { 1, -1, 1, -1 }, q);
        AreClose(new float[] { 1, 2, 0, 4 }, grad, 0, "clipped at |w| <= 1 (XNOR-Net)");
        // Per row: alpha = 0.75 and 1.25.
        (q, _) = ForwardBackward(new BinaryWeightNetQuantizer(perRow: true), w, c);
        AreClose(new float[] { 0.75f, -0.75f, 1.25f, -1.25f }, q);
        // The multiplier scales alpha.
        (q, _) = ForwardBackward(new BinaryWeightNetQuantizer(stepSizeMultiplier: 2), w, c);
        AreClose(new float[] { 2, -2, 2, -2 }, q);
    }
}
