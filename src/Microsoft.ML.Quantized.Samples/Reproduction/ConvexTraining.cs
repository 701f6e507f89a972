namespace Microsoft.ML.Quantized.Samples.Reproduction;

/// <summary>How a convex model is trained on the grid {k * step} (Li et al. 2017, section 3).</summary>
internal enum ConvexMethod
{
    /// <summary>Plain minibatch SGD, no grid: the reference.</summary>
    FullPrecision,

    /// <summary>
    /// BinaryConnect's rule with a uniform grid (Li et al.'s "BC"): the gradient is taken at the deterministically rounded
    /// weights Q_d(w_r) and applied to float shadow weights w_r; the deployed model is Q_d(w_r).
    /// </summary>
    BinaryConnect,

    /// <summary>
    /// Stochastic rounding (Li et al.'s "SR"): no shadow weights; w &lt;- Q_s(w - lr * g(w)), rounding up with probability equal to
    /// the remainder's share of the step, so E[Q_s(v)] = v. The weights are always on the grid.
    /// </summary>
    StochasticRounding,
}

/// <summary>The measurements of one training run.</summary>
/// <param name="Gaps">f(deployed weights) - f* after each epoch.</param>
/// <param name="Changes">Per epoch: grid-value changes per weight (how often a deployed weight moved to another grid point).</param>
internal sealed record ConvexRun(double[] Gaps, double[] Changes)
{
    /// <summary>The mean gap over the last <paramref name="epochs"/> epochs (SR's weights keep moving; one epoch's gap is noisy).</summary>
    public double FinalGap(int epochs = 5) => Gaps[^Math.Min(epochs, Gaps.Length)..].Average();
}

/// <summary>Minibatch SGD on a <see cref="ConvexProblem"/> with full-precision, BinaryConnect or stochastic-rounding weights.</summary>
internal static class ConvexTraining
{
    /// <summary>Deterministic rounding to the grid: step * round(v / step), halves away from zero.</summary>
    public static double RoundToGrid(double value, double step) => step * Math.Round(value / step, MidpointRounding.AwayFromZero);

    /// <summary>Stochastic rounding to the grid: the lower grid point, or the upper one with probability (v - lower) / step.</summary>
    public static double RoundStochastically(double value, double step, Random random)
    {
        double lower = Math.Floor(value / step);
        double remainder = value / step - lower;
        return step * (random.NextDouble() < remainder ? lower + 1 : lower);
    }

    /// <summary>
    /// Trains from w = 0 for <paramref name="epochs"/> epochs of minibatches of <paramref name="batchSize"/> (a fresh
    /// shuffle each epoch, the same for every method under the same <paramref name="seed"/>), at a constant learning rate.
    /// </summary>
    public static ConvexRun Run(ConvexProblem problem, ConvexMethod method, double learningRate, double step, int epochs, int batchSize, int seed)
    {
        if (learningRate <= 0 || step <= 0 || epochs < 1 || batchSize < 1)
            throw new ArgumentException($"Needs a positive learning rate and step, 1+ epochs and a batch of 1+; got {learningRate}, {step}, {epochs}, {batchSize}.");
        int d = problem.Dimension;
        var shuffle = new Random(seed);
        var rounding = new Random(seed + 1);
        var w = new double[d];             // the trained weights: shadow weights for BC, grid weights for SR
        var deployed = new double[d];      // what the model uses and ships
        var previous = new double[d];
        var gradient = new double[d];
        var order = Enumerable.Range(0, problem.Count).ToArray();
        var gaps = new double[epochs];
        var changes = new double[epochs];
        Deploy(method, w, step, deployed);
        for (int epoch = 0; epoch < epochs; epoch++)
        {
            shuffle.Shuffle(order);
            long changed = 0;
            for (int start = 0; start < order.Length; start += batchSize)
            {
                var batch = order.AsSpan(start, Math.Min(batchSize, order.Length - start));
                problem.Gradient(method == ConvexMethod.BinaryConnect ? deployed : w, batch, gradient);
                for (int j = 0; j < d; j++)
                {
                    double updated = w[j] - learningRate * gradient[j];
                    w[j] = method == ConvexMethod.StochasticRounding ? RoundStochastically(updated, step, rounding) : updated;
                }
                deployed.CopyTo(previous, 0);
                Deploy(method, w, step, deployed);
                for (int j = 0; j < d; j++)
                    if (deployed[j] != previous[j]) changed++;
            }
            gaps[epoch] = problem.Loss(deployed) - problem.MinimumLoss;
            changes[epoch] = (double)changed / d;
        }
        return new ConvexRun(gaps, changes);
    }

    private static void Deploy(ConvexMethod method, double[] w, double step, double[] deployed)
    {
        if (method == ConvexMethod.BinaryConnect)
            for (int j = 0; j < w.Length; j++) deployed[j] = RoundToGrid(w[j], step);
        else w.CopyTo(deployed, 0);
    }
}
