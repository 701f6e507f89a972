using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized.Tests;

[TestClass]
public sealed class AbsoluteCoefficientOfVariationTests
{
    [TestMethod]
    public void HandWorkedValuesAndTheKnownDistributions()
    {
        using var scope = NewDisposeScope();
        // {1, 2, 3, 6}: mean 3, |d| = {2, 1, 0, 3}, mean 1.5, squared deviations {0.25, 0.25, 2.25, 2.25}, std sqrt(1.25).
        Assert.AreEqual(Math.Sqrt(1.25) / 1.5, AbsoluteCoefficientOfVariation.Of(torch.tensor(new double[] { 1, 2, 3, 6 })).item<double>(), 1e-12);
        Assert.AreEqual(0.0, AbsoluteCoefficientOfVariation.Of(torch.tensor(new double[] { -1, 1, -1, 1 })).item<double>(), 1e-12, "two points: every |d| is 1");
        Assert.AreEqual(0.0, AbsoluteCoefficientOfVariation.Of(torch.tensor(new double[] { 5, 5, 5 })).item<double>(), 0.0, "a constant gives 0, not NaN");

        using var generator = new Generator(42);
        const int n = 1_000_000;
        var uniform = torch.rand(n, ScalarType.Float64, generator: generator) * 2 - 1;
        var gaussian = torch.randn(n, ScalarType.Float64, generator: generator) * 0.3 + 5; // shift and scale do not matter
        var u = torch.rand(n, ScalarType.Float64, generator: generator) - 0.5;
        var laplace = -u.sign() * torch.log1p(-2 * u.abs());
        Assert.AreEqual(KureOptions.UniformAbsoluteCoefficientOfVariation, AbsoluteCoefficientOfVariation.Of(uniform).item<double>(), 0.003, "uniform: 1/sqrt(3)");
        Assert.AreEqual(Math.Sqrt(Math.PI / 2 - 1), AbsoluteCoefficientOfVariation.Of(gaussian).item<double>(), 0.003, "Gaussian: sqrt(pi/2 - 1)");
        Assert.AreEqual(1.0, AbsoluteCoefficientOfVariation.Of(laplace).item<double>(), 0.005, "Laplace: |d| is exponential");

        var rows = AbsoluteCoefficientOfVariation.OfRows(torch.tensor(new double[] { 1, 2, 3, 6, -1, 1, -1, 1 }).reshape(2, 4));
        CollectionAssert.AreEqual(new long[] { 2 }, rows.shape);
        Assert.AreEqual(Math.Sqrt(1.25) / 1.5, rows[0].item<double>(), 1e-12);
        Assert.AreEqual(0.0, rows[1].item<double>(), 1e-12);
        Assert.ThrowsExactly<ArgumentException>(() => AbsoluteCoefficientOfVariation.OfRows(torch.ones(4)));
    }

    [TestMethod]
    public void TheKureTermOnItPullsALaplaceTensorTowardUniform()
    {
        using var generator = new Generator(7);
        var u = torch.rand(new long[] { 64, 64 }, generator: generator) - 0.5;
        using var w = new Parameter(-u.sign() * torch.log1p(-2 * u.abs()));
        var options = new KureOptions { Lambda = 1, Statistic = UniformityStatistic.AbsoluteCoefficientOfVariation, Target = KureOptions.UniformAbsoluteCoefficientOfVariation };
        var regularizer = new KurtosisRegularizer(options, new Tensor[] { w });
        double before = AbsoluteCoefficientOfVariation.Of(w.detach()).item<float>();
        using var optimizer = new Optimizers.Adam(new[] { w }, 0.01, 0.0);
        double first = double.NaN;
        for (int step = 0; step < 300; step++)
        {
            using var scope = NewDisposeScope();
            optimizer.zero_grad();
            var loss = regularizer.Loss();
            if (step == 0) first = loss.item<float>();
            loss.backward();
            optimizer.step();
        }
        double after = AbsoluteCoefficientOfVariation.Of(w.detach()).item<float>();
        Assert.AreEqual(1.0, before, 0.05, "starts Laplace");
        Assert.AreEqual(Math.Pow(before - KureOptions.UniformAbsoluteCoefficientOfVariation, 2), first, 1e-4, "loss = lambda * (cv - target)^2");
        Assert.AreEqual(KureOptions.UniformAbsoluteCoefficientOfVariation, after, 0.03, $"{before:F3} -> {after:F3}");
    }

    [TestMethod]
    public void TheTargetIsCheckedAgainstTheStatistic()
    {
        var kurtosisTarget = new KureOptions { Statistic = UniformityStatistic.AbsoluteCoefficientOfVariation };
        var e = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => OptionsValidator.Validate(kurtosisTarget));
        Assert.AreEqual("KureOptions.Target", e.ParamName);
        StringAssert.Contains(e.Message, "got 1.8 (the kurtosis default)");
        StringAssert.Contains(e.Message, "UniformAbsoluteCoefficientOfVariation");
        OptionsValidator.Validate(new KureOptions { Statistic = UniformityStatistic.AbsoluteCoefficientOfVariation, Target = 0.6 });
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => OptionsValidator.Validate(new KureOptions { Target = 0.6 }), "0.6 is no kurtosis");
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => OptionsValidator.Validate(new KureOptions { Statistic = (UniformityStatistic)7 }));
    }
}
