using TorchSharp;
using static Microsoft.ML.Quantized.Tests.Quantizers.QuantizerTestUtil;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized.Tests.Quantizers;

[TestClass]
public sealed class AlternatingMultiBitTests
{
    [TestMethod]
    public void TwoBases_RepresentFourSymmetricLevelsExactly()
    {
        using var scope = torch.NewDisposeScope();
        // Greedy: alpha1 = mean |w| = 2, b1 = sign(w); residual +-1 -> alpha2 = 1. 2 +- 1 covers all four values.
        var w = Matrix(1, 4, 3f, 1f, -1f, -3f);
        var quantizer = new AlternatingMultiBitQuantizer(bits: 2);
        AreClose(new float[] { 3, 1, -1, -3 }, quantizer.forward(w), 1e-6);
        var encoded = quantizer.Encode(w);
        Assert.AreEqual(CodeLayout.BinaryBases, encoded.Layout);
        AreClose(new float[] { 2, 1 }, encoded.Scales, 1e-6);
        CollectionAssert.AreEqual(new[] { 3, 1, 2, 0 }, encoded.Codes, "bit i set = +alpha_i");
    }

    [TestMethod]
    public void TheFitIsReusedForUnchangedWeights_AndRedoneWhenTheyChangeInPlace()
    {
        using var scope = torch.NewDisposeScope();
        var w = Matrix(1, 4, 3f, 1f, -1f, -3f);
        var quantizer = new AlternatingMultiBitQuantizer(bits: 2);
        AreClose(new float[] { 3, 1, -1, -3 }, quantizer.forward(w), 1e-6);
        AreClose(new float[] { 3, 1, -1, -3 }, quantizer.forward(w), 1e-6);
        using (torch.no_grad()) w.mul_(2);
        AreClose(new float[] { 6, 2, -2, -6 }, quantizer.forward(w), 1e-6);
        // The reused values still carry the straight-through gradient to the live weights.
        var live = Matrix(1, 4, 6f, 2f, -2f, -6f).requires_grad_(true);
        quantizer.forward(live).sum().backward();
        AreClose(new float[] { 1, 1, 1, 1 }, live.grad!, 0);
    }

    [TestMethod]
    public void OneBase_IsBinaryWeightNet()
    {
        using var scope = torch.NewDisposeScope();
        var w = Matrix(2, 2, 0.5f, -1.0f, 2.0f, -0.5f);
        AreClose(new float[] { 0.75f, -0.75f, 1.25f, -1.25f }, new AlternatingMultiBitQuantizer(bits: 1, perRow: true).forward(w), 1e-6);
    }

    /// <summary>
    /// Xu et al. quantize row by row: the registry's alt is per row (row 0: alpha = mean(0.5, 1) = 0.75; row 1: mean(2, 0.5) =
    /// 1.25); -tensor fits one alpha = mean(0.5, 1, 2, 0.5) = 1 for the matrix.
    /// </summary>
    [TestMethod]
    public void RegistryDefault_IsPerRow_AndTensorFitsOneSetOfCoefficients()
    {
        using var scope = torch.NewDisposeScope();
        var w = Matrix(2, 2, 0.5f, -1.0f, 2.0f, -0.5f);
        Assert.IsTrue(new QuantizerOptions { Kind = QuantizerKind.AlternatingMultiBit }.PerRowScale, "options default");
        AreClose(new float[] { 0.75f, -0.75f, 1.25f, -1.25f }, QuantizerFactory.Create(QuantizerRegistry.Parse("alt1")).forward(w), 1e-6);
        AreClose(new float[] { 1f, -1f, 1f, -1f }, QuantizerFactory.Create(QuantizerRegistry.Parse("alt1-tensor")).forward(w), 1e-6);
        Assert.IsTrue(QuantizerFactory.Create(QuantizerRegistry.Parse("alt2")).Encode(w).PerRow);
    }

    [TestMethod]
    public void Error_FallsAsBitsRise_AndAlternatingBeatsGreedy()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(42);
        var w = torch.randn(32, 64);
        double Error(Quantizer q) => (q.forward(w) - w).pow(2).mean().item<float>();

        var previous = double.MaxValue;
        for (int k = 1; k <= 4; k++)
        {
            var greedy = Error(new AlternatingMultiBitQuantizer(bits: k, iterations: 0));
            var alternating = Error(new AlternatingMultiBitQuantizer(bits: k));
            var longer = Error(new AlternatingMultiBitQuantizer(bits: k, iterations: 5));
            Assert.IsLessThan(previous, alternating, $"k = {k} must beat k = {k - 1}");
            Assert.IsLessThanOrEqualTo(greedy + 1e-7, alternating, $"k = {k}: alternating {alternating} vs greedy {greedy}");
            Assert.IsLessThanOrEqualTo(alternating + 1e-7, longer, $"k = {k}: more cycles never hurt");
            if (k >= 2) Assert.IsLessThan(greedy * 0.98, alternating, $"k = {k}: alternating {alternating} should clearly beat greedy {greedy}");
            previous = alternating;
        }
        // Per-row coefficients fit at least as well as per-tensor ones.
        Assert.IsLessThanOrEqualTo(Error(new AlternatingMultiBitQuantizer(bits: 2)) + 1e-7, Error(new AlternatingMultiBitQuantizer(bits: 2, perRow: true)));
    }

    [TestMethod]
    public void StraightThrough_IsIdentity()
    {
        using var scope = torch.NewDisposeScope();
        var w = Matrix(1, 4, 0.3f, -2f, 0.01f, 5f);
        var c = Matrix(1, 4, 1, 2, 3, 4);
        var (_, grad) = ForwardBackward(new AlternatingMultiBitQuantizer(bits: 3), w, c);
        AreClose(new float[] { 1, 2, 3, 4 }, grad, 0);
    }
}
