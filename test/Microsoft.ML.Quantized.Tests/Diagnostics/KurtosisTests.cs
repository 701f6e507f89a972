using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized.Tests;

[TestClass]
public sealed class KurtosisTests
{
    private const int N = 1_000_000;

    [TestMethod]
    public void UniformGaussianAndLaplaceHaveTheirKnownKurtosis()
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(42);
        var uniform = torch.rand(N, generator: generator) * 2 - 1;
        var gaussian = torch.randn(N, generator: generator) * 0.3 + 5; // shift and scale do not matter
        var u = torch.rand(N, generator: generator) - 0.5;
        var laplace = -u.sign() * torch.log1p(-2 * u.abs());
        Assert.AreEqual(1.8, Kurtosis.Value(uniform), 0.02, "uniform");
        Assert.AreEqual(3.0, Kurtosis.Value(gaussian), 0.05, "Gaussian");
        Assert.AreEqual(6.0, Kurtosis.Value(laplace), 0.25, "Laplace");
        Assert.AreEqual(Kurtosis.Value(uniform), Kurtosis.Of(uniform).item<float>(), 1e-3, "float32 graph version agrees with the float64 value");
    }

    [TestMethod]
    public void TwoPointDistributionHasTheMinimumKurtosisOneAndAConstantGivesZero()
    {
        using var scope = NewDisposeScope();
        Assert.AreEqual(1.0, Kurtosis.Value(torch.tensor(new float[] { -1, 1, -1, 1 })), 1e-9);
        Assert.AreEqual(0.0, Kurtosis.Value(torch.full(10, 0.5f)), 0.0);
        Assert.ThrowsExactly<ArgumentException>(() => Kurtosis.Of(torch.ones(1)));
    }

    [TestMethod]
    public void RowKurtosisHasOneValuePerRowAndRejectsNonMatrices()
    {
        using var scope = NewDisposeScope();
        var rows = torch.tensor(new float[] { -1, 1, -1, 1, -2, 0, 0, 2, 5, 5, 5, 5 }).reshape(3, 4);
        CollectionAssert.AreEqual(new[] { 1f, 2f, 0f }, Kurtosis.OfRows(rows).data<float>().ToArray(), "two-point 1, {-2,0,0,2} 2, constant 0");
        Assert.AreEqual(Kurtosis.Value(rows[1]), Kurtosis.OfRows(rows)[1].item<float>(), 1e-6, "a row's value is that row's kurtosis");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => Kurtosis.OfRows(torch.ones(8))).Message, "needs a matrix; got a tensor of shape [8]");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => Kurtosis.OfRows(torch.ones(4, 1))).Message, "at least 2 values per row");
    }

    [TestMethod]
    public void KurtosisIsDifferentiableAndScaleInvariant()
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(3);
        var w = torch.randn(new long[] { 20, 30 }, generator: generator).requires_grad_();
        var k = Kurtosis.Of(w);
        k.backward();
        Assert.IsNotNull(w.grad);
        Assert.IsTrue(w.grad.abs().sum().item<float>() > 0);
        using var noGrad = no_grad();
        Assert.AreEqual(k.item<float>(), Kurtosis.Of(w * 7.5).item<float>(), 1e-4);
        // The gradient of a scale-invariant function is orthogonal to the centered weights.
        var centered = w - w.mean();
        Assert.AreEqual(0.0, (w.grad * centered).sum().item<float>(), 1e-4);
    }

    [TestMethod]
    public void StreamingMomentsMatchTheWholeSample()
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(8);
        var x = torch.randn(100_000, generator: generator).exp(); // skewed, heavy tailed
        var whole = Kurtosis.Value(x);
        var accumulator = new MomentAccumulator();
        foreach (var chunk in x.split(new long[] { 1, 999, 30_000, 50_000, 19_000 })) accumulator.Add(chunk);
        accumulator.Add(torch.empty(0)); // empty: no effect
        Assert.AreEqual(100_000, accumulator.Count);
        Assert.AreEqual(x.to_type(ScalarType.Float64).mean().item<double>(), accumulator.Mean, 1e-9);
        Assert.AreEqual(whole, accumulator.Kurtosis, 1e-6 * whole);
        var scalars = new MomentAccumulator();
        foreach (var v in new[] { -1.0, 1, -1, 1 }) scalars.Add(v);
        Assert.AreEqual(1.0, scalars.Kurtosis, 1e-12);
        Assert.AreEqual(1.0, scalars.Variance, 1e-12);
        Assert.IsTrue(double.IsNaN(new MomentAccumulator().Kurtosis));
    }

    [TestMethod]
    public void WeightStatisticsDescribeATensor()
    {
        using var scope = NewDisposeScope();
        var stats = WeightStatistics.Of("w", torch.tensor(new float[] { -2, 0, 0, 2 }));
        Assert.AreEqual("w", stats.Name);
        Assert.AreEqual(4, stats.Count);
        Assert.AreEqual(0.0, stats.Mean, 1e-12);
        Assert.AreEqual(Math.Sqrt(2), stats.StdDev, 1e-9);
        Assert.AreEqual(2.0, stats.MaxAbs, 0.0);
        Assert.AreEqual(2.0, stats.Kurtosis, 1e-9); // mean(x^4) = 8, var^2 = 4
        Assert.IsTrue(double.IsNaN(stats.MeanRowKurtosis), "a vector has no rows");
        // Rows {-1,1,-1,1} (kurtosis 1) and {-2,0,0,2} (2): mean row kurtosis 1.5; pooled (variance 1.5, mean fourth power 4.5) the tensor's is 2.
        var matrix = WeightStatistics.Of("m", torch.tensor(new float[] { -1, 1, -1, 1, -2, 0, 0, 2 }).reshape(2, 4));
        Assert.AreEqual(1.5, matrix.MeanRowKurtosis, 1e-9);
        Assert.AreEqual(2.0, matrix.Kurtosis, 1e-9);
    }
}
