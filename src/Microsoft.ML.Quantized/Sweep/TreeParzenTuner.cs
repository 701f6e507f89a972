namespace Microsoft.ML.Quantized.Sweep;

/// <summary>
/// Tree-structured Parzen Estimator (Bergstra et al., "Algorithms for hyper-parameter optimization", NeurIPS 2011),
/// the model-based tuner: after <see cref="StartupTrials"/> random proposals it splits the observed trials into good
/// (the best <see cref="Gamma"/> fraction, at most 25, as Optuna) and bad, fits a density per axis to each (<c>l(x)</c> and <c>g(x)</c>),
/// draws <see cref="Candidates"/> configurations from the good densities and proposes the one that maximizes
/// <c>l(x) / g(x)</c>, skipping configurations already tried. Under successive halving, trials that reached more
/// epochs rank before trials stopped earlier (then by loss), as Optuna ranks pruned trials; failed trials rank last.
/// Deterministic given the seed and the history.
/// </summary>
public sealed class TreeParzenTuner : ISweepTuner
{
    /// <summary>A tuner; defaults follow Optuna (10 random start-up trials, gamma 0.1, 24 candidates).</summary>
    /// <param name="startupTrials">Random proposals before the model is used (at least 1). Default 10.</param>
    /// <param name="gamma">Fraction of observed trials counted as good (at least 1, at most 25 trials), in (0, 1). Default 0.1.</param>
    /// <param name="candidates">Candidates drawn from the good densities per proposal (at least 1). Default 24.</param>
    public TreeParzenTuner(int startupTrials = 10, double gamma = 0.1, int candidates = 24)
    {
        if (startupTrials < 1)
            throw new ArgumentOutOfRangeException(nameof(startupTrials), startupTrials, "TreeParzenTuner.StartupTrials must be at least 1 (default 10).");
        if (!(gamma > 0 && gamma < 1))
            throw new ArgumentOutOfRangeException(nameof(gamma), gamma, "TreeParzenTuner.Gamma must be in (0, 1) (default 0.1).");
        if (candidates < 1)
            throw new ArgumentOutOfRangeException(nameof(candidates), candidates, "TreeParzenTuner.Candidates must be at least 1 (default 24).");
        StartupTrials = startupTrials;
        Gamma = gamma;
        Candidates = candidates;
    }

    // Optuna's cap on the good set.
    private const int MaxGoodTrials = 25;

    // From this attempt on (earlier proposals were all tried), propose at random.
    private const int RandomFallbackAttempt = 8;

    /// <summary>Random proposals before the model is used.</summary>
    public int StartupTrials { get; }

    /// <summary>Fraction of observed trials counted as good.</summary>
    public double Gamma { get; }

    /// <summary>Candidates drawn per proposal.</summary>
    public int Candidates { get; }

    /// <inheritdoc />
    public QuantizationConfiguration? Propose(TunerContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var space = context.SearchSpace;
        var random = context.CreateRandom();
        var observations = context.History
            .Select(t => (Trial: t, Point: space.Encode(t.Configuration)))
            .Where(o => o.Point is not null)
            .ToList();
        // Random during warm-up, and when the model keeps proposing configurations already tried.
        if (observations.Count < StartupTrials || context.Attempt >= RandomFallbackAttempt) return RandomTuner.Sample(space, random);

        var ranked = observations
            .OrderBy(o => o.Trial.Status == TrialStatus.Failed ? 1 : 0)
            .ThenByDescending(o => o.Trial.EpochsUsed)
            .ThenBy(o => context.Loss(o.Trial))
            .ThenBy(o => o.Trial.Id)
            .Select(o => o.Point!)
            .ToList();
        int goodCount = Math.Clamp((int)Math.Ceiling(Gamma * ranked.Count), 1, MaxGoodTrials);
        var good = ranked.Take(goodCount).ToList();
        var bad = ranked.Skip(goodCount).ToList();

        var dimensions = space.Dimensions();
        var l = new ParzenEstimator[dimensions.Count];
        var g = new ParzenEstimator[dimensions.Count];
        for (int d = 0; d < dimensions.Count; d++)
        {
            l[d] = new ParzenEstimator(dimensions[d], good.Select(p => p[d]).ToArray());
            g[d] = new ParzenEstimator(dimensions[d], bad.Select(p => p[d]).ToArray());
        }

        QuantizationConfiguration? best = null, bestTried = null;
        double bestScore = double.NegativeInfinity, bestTriedScore = double.NegativeInfinity;
        for (int c = 0; c < Candidates; c++)
        {
            var point = new double[dimensions.Count];
            double score = 0;
            for (int d = 0; d < dimensions.Count; d++)
            {
                point[d] = l[d].Sample(random);
                score += l[d].LogDensity(point[d]) - g[d].LogDensity(point[d]);
            }
            var candidate = space.Decode(point);
            if (context.IsTried(candidate))
            {
                if (score > bestTriedScore) (bestTried, bestTriedScore) = (candidate, score);
            }
            else if (score > bestScore)
            {
                (best, bestScore) = (candidate, score);
            }
        }
        // Every candidate already tried: hand back the best one; the experiment asks again with a new attempt.
        return best ?? bestTried;
    }
}
