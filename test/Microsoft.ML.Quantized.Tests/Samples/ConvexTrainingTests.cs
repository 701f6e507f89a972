using Microsoft.ML.Quantized.Samples.Reproduction;

namespace Microsoft.ML.Quantized.Tests.Samples;

/// <summary>
/// The convex study's parts (Li et al. 2017): the two roundings against hand-worked values, the optimum against its
/// gradient, and the three training rules against a direct computation of their first steps.
/// </summary>
[TestClass]
public sealed class ConvexTrainingTests
{
    [TestMethod]
    public void Deterministic_rounding_goes_to_the_nearest_grid_point()
    {
        Assert.AreEqual(0.25, ConvexTraining.RoundToGrid(0.3, 0.25));
        Assert.AreEqual(0.5, ConvexTraining.RoundToGrid(0.38, 0.25));
        Assert.AreEqual(-0.25, ConvexTraining.RoundToGrid(-0.125 - 1e-9, 0.25));
        Assert.AreEqual(0.25, ConvexTraining.RoundToGrid(0.125, 0.25), "halves away from zero");
    }

    [TestMethod]
    public void Stochastic_rounding_picks_a_neighbouring_grid_point_unbiased()
    {
        // 0.3 on a grid of 0.25: 0.25 with probability 0.8, 0.5 with probability 0.2; mean 0.3.
        var random = new Random(7);
        var draws = Enumerable.Range(0, 20_000).Select(_ => ConvexTraining.RoundStochastically(0.3, 0.25, random)).ToArray();
        CollectionAssert.AreEquivalent(new[] { 0.25, 0.5 }, draws.Distinct().ToArray());
        double upShare = draws.Count(v => v == 0.5) / (double)draws.Length;
        Assert.AreEqual(0.2, upShare, 0.01);
        Assert.AreEqual(0.3, draws.Average(), 0.003);
        Assert.AreEqual(-0.5, ConvexTraining.RoundStochastically(-0.5, 0.25, random), "a grid point stays");
    }

    [TestMethod]
    [DataRow(false)]
    [DataRow(true)]
    public void The_optimum_has_zero_gradient_and_the_lowest_loss(bool logistic)
    {
        var problem = logistic ? ConvexProblem.LogisticRegression(300, 5, seed: 3) : ConvexProblem.LeastSquares(300, 5, seed: 3);
        var all = Enumerable.Range(0, problem.Count).ToArray();
        var gradient = new double[problem.Dimension];
        problem.Gradient(problem.Optimum, all, gradient);
        Assert.IsLessThan(1e-10, Math.Sqrt(gradient.Sum(g => g * g)));
        // Any step away from the optimum raises the loss (strict convexity).
        var moved = problem.Optimum.ToArray();
        moved[2] += 0.01;
        Assert.IsGreaterThan(problem.MinimumLoss, problem.Loss(moved));

        // The gradient against a central finite difference of the loss.
        var point = Enumerable.Range(0, problem.Dimension).Select(j => 0.1 * j - 0.2).ToArray();
        problem.Gradient(point, all, gradient);
        for (int j = 0; j < point.Length; j++)
        {
            var (up, down) = (point.ToArray(), point.ToArray());
            up[j] += 1e-6;
            down[j] -= 1e-6;
            Assert.AreEqual((problem.Loss(up) - problem.Loss(down)) / 2e-6, gradient[j], 1e-6, $"weight {j}");
        }
    }

    [TestMethod]
    public void BinaryConnect_takes_the_gradient_at_the_rounded_weights_and_keeps_the_float_ones()
    {
        // One example, one weight, least squares: f(w) = (x w - y)^2 / 2 with x, y from the problem. One step of batch 1 from 0.
        var problem = ConvexProblem.LeastSquares(2, 1, seed: 5);
        const double rate = 0.1, step = 0.5;
        var run = ConvexTraining.Run(problem, ConvexMethod.BinaryConnect, rate, step, epochs: 1, batchSize: 2, seed: 0);
        // From w_r = 0: Q(0) = 0, gradient at 0 over both examples g0; w_r = -rate * g0; deployed = Q(w_r).
        var g = new double[1];
        problem.Gradient([0.0], [0, 1], g);
        double shadow = -rate * g[0];
        double deployed = ConvexTraining.RoundToGrid(shadow, step);
        Assert.AreEqual(problem.Loss([deployed]) - problem.MinimumLoss, run.Gaps[0], 1e-12);

        var full = ConvexTraining.Run(problem, ConvexMethod.FullPrecision, rate, step, epochs: 1, batchSize: 2, seed: 0);
        Assert.AreEqual(problem.Loss([shadow]) - problem.MinimumLoss, full.Gaps[0], 1e-12, "full precision deploys the float weight itself");
    }

    [TestMethod]
    public void A_fine_grid_makes_both_quantized_rules_track_full_precision()
    {
        var problem = ConvexProblem.LeastSquares(200, 4, seed: 9);
        var full = ConvexTraining.Run(problem, ConvexMethod.FullPrecision, 0.05, 1e-9, epochs: 20, batchSize: 16, seed: 1);
        var bc = ConvexTraining.Run(problem, ConvexMethod.BinaryConnect, 0.05, 1e-9, epochs: 20, batchSize: 16, seed: 1);
        var sr = ConvexTraining.Run(problem, ConvexMethod.StochasticRounding, 0.05, 1e-9, epochs: 20, batchSize: 16, seed: 1);
        Assert.AreEqual(full.FinalGap(), bc.FinalGap(), 1e-6);
        Assert.AreEqual(full.FinalGap(), sr.FinalGap(), 1e-6);

        // A coarse grid leaves stochastic rounding far above the rounded optimum's gap.
        var coarse = ConvexTraining.Run(problem, ConvexMethod.StochasticRounding, 0.05, 0.25, epochs: 20, batchSize: 16, seed: 1);
        double floor = problem.Loss(problem.Optimum.Select(v => ConvexTraining.RoundToGrid(v, 0.25)).ToArray()) - problem.MinimumLoss;
        Assert.IsGreaterThan(floor, coarse.FinalGap());
    }
}
