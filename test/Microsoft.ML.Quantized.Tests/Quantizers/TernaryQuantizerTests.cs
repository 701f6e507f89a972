using TorchSharp;
using static Microsoft.ML.Quantized.Tests.Quantizers.QuantizerTestUtil;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized.Tests.Quantizers;

[TestClass]
public sealed class TernaryQuantizerTests
{
    [TestMethod]
    public void TernaryWeightNet_ThresholdAndScale_PerTensor()
    {
        using var scope = torch.NewDisposeScope();
        // mean |w| = 3.0 / 6 = 0.5, delta = 0.35; kept 0.9, 0.5, 1.3 -> alpha = 0.9.
        var w = Matrix(1, 6, 0.1f, -0.9f, 0.5f, -0.2f, 1.3f, 0f);
        var c = Matrix(1, 6, 1, 2, 3, 4, 5, 6);
        var (q, grad) = ForwardBackward(new TernaryWeightNetQuantizer(), w, c);
        AreClose(new float[] { 0, -0.9f, 0.9f, 0, 0.9f, 0 }, q);
        AreClose(new float[] { 1, 2, 3, 4, 5, 6 }, grad, 0, "identity straight-through");
        var encoded = new TernaryWeightNetQuantizer().Encode(w);
        AreClose(new float[] { 0.9f }, encoded.Scales);
        Assert.AreEqual(2, encoded.Bits);
    }

    [TestMethod]
    public void TernaryWeightNet_PerRow()
    {
        using var scope = torch.NewDisposeScope();
        // Row 0: mean 0.5, delta 0.35, kept 0.9, 0.5 -> alpha 0.7. Row 1: mean 0.5, kept 1.3 -> alpha 1.3.
        var w = Matrix(2, 3, 0.1f, -0.9f, 0.5f, -0.2f, 1.3f, 0f);
        var q = new TernaryWeightNetQuantizer(perRow: true).forward(w);
        AreClose(new float[] { 0, -0.7f, 0.7f, 0, 1.3f, 0 }, q);
        var encoded = new TernaryWeightNetQuantizer(perRow: true).Encode(w);
        AreClose(new float[] { 0.7f, 1.3f }, encoded.Scales);
    }

    [TestMethod]
    public void ThresholdTernary_ThresholdIsFractionOfMax()
    {
        using var scope = torch.NewDisposeScope();
        var w = Matrix(2, 3, 0.005f, -0.04f, 0.2f, -1.0f, 0.06f, 0.5f);
        // Per tensor: max 1, delta = 0.05: kept 0.2, -1, 0.06, 0.5 -> alpha = 1.76 / 4 = 0.44.
        AreClose(new float[] { 0, 0, 0.44f, -0.44f, 0.44f, 0.44f }, new ThresholdTernaryQuantizer().forward(w));
        // Per row: row 0 max 0.2, delta 0.01: kept -0.04, 0.2 -> 0.12; row 1 delta 0.05: kept all -> 1.56 / 3 = 0.52.
        AreClose(new float[] { 0, -0.12f, 0.12f, -0.52f, 0.52f, 0.52f }, new ThresholdTernaryQuantizer(perRow: true).forward(w));
        // Another theta: delta = 0.3 -> kept -1, 0.5 -> alpha 0.75.
        AreClose(new float[] { 0, 0, 0, -0.75f, 0, 0.75f }, new ThresholdTernaryQuantizer(theta: 0.3).forward(w));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new ThresholdTernaryQuantizer(theta: 1.5));
    }

    [TestMethod]
    public void ThresholdTernary_IdentityStraightThrough_AndAllZeroInput()
    {
        using var scope = torch.NewDisposeScope();
        var c = Matrix(1, 3, 1, 2, 3);
        var (_, grad) = ForwardBackward(new ThresholdTernaryQuantizer(), Matrix(1, 3, 0.001f, -2f, 5f), c);
        AreClose(new float[] { 1, 2, 3 }, grad, 0);
        // All zeros: nothing kept, alpha 0, no NaN.
        AreClose(new float[] { 0, 0, 0 }, new TernaryWeightNetQuantizer().forward(torch.zeros(1, 3)), 0);
        AreClose(new float[] { 0, 0, 0 }, new ThresholdTernaryQuantizer().forward(torch.zeros(1, 3)), 0);
    }

    [TestMethod]
    public void BernoulliTernary_EvalRule_AndClippedIdentityGradient()
    {
        using var scope = torch.NewDisposeScope();
        var quantizer = new BernoulliTernaryQuantizer();
        quantizer.eval();
        var x = torch.tensor(new float[] { -0.9f, -0.5f, -0.2f, 0f, 0.3f, 0.51f, 1.4f });
        AreClose(new float[] { -1, 0, 0, 0, 0, 1, 1 }, quantizer.forward(x), 0, "1-D activations, eval rule sign(x) 1{|x| > 0.5}");

        torch.manual_seed(3);
        var (q, grad) = ForwardBackward(quantizer, Matrix(1, 4, 0.3f, -0.6f, 1.4f, -2f), Matrix(1, 4, 1, 2, 3, 4));
        AreClose(new float[] { 1, 2, 0, 0 }, grad, 0, "identity inside [-1, 1]");
        Assert.AreEqual(1f, q[2]);
        Assert.AreEqual(-1f, q[3]);
    }

    [TestMethod]
    public void BernoulliTernary_TrainingIsTernaryAndUnbiased()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(99);
        var quantizer = new BernoulliTernaryQuantizer();
        quantizer.train();
        var pattern = new float[] { -0.8f, -0.3f, 0f, 0.4f, 0.9f };
        var x = torch.tensor(pattern).repeat(20000, 1);
        var q = quantizer.forward(x);
        Assert.IsTrue((q.abs() <= 1).logical_and(q == q.round()).all().item<bool>(), "values in {-1, 0, 1}");
        AreClose(pattern, q.mean(new long[] { 0 }), 0.03, "E[q] = x");
        Assert.ThrowsExactly<ArgumentException>(() => quantizer.Encode(torch.tensor(pattern)));
    }
}
