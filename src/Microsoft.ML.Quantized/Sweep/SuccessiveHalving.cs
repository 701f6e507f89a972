namespace Microsoft.ML.Quantized.Sweep;

/// <summary>
/// The epoch budgets (rungs) of successive halving (Jamieson and Talwalkar 2016; Li et al., Hyperband 2018):
/// a bracket of eta^K configurations trains to the smallest budget, the top 1/eta go on to the next budget, and so
/// on up to the full budget. Rungs are <c>round(max / eta^k)</c> for k = K..0 with K = floor(log_eta(max / min)),
/// so the last rung is exactly the maximum. Without successive halving there is one rung (the maximum).
/// </summary>
internal sealed class SuccessiveHalving
{
    public SuccessiveHalving(int minEpochs, int maxEpochs, int reductionFactor)
    {
        if (maxEpochs < 1)
            throw new ArgumentOutOfRangeException(nameof(maxEpochs), maxEpochs, "The maximum epoch budget must be at least 1.");
        if (minEpochs < 1 || minEpochs > maxEpochs)
            throw new ArgumentOutOfRangeException(nameof(minEpochs), minEpochs, $"The minimum epoch budget must be in [1, maxEpochs = {maxEpochs}].");
        if (reductionFactor < 2)
            throw new ArgumentOutOfRangeException(nameof(reductionFactor), reductionFactor, "The reduction factor (eta) must be at least 2; 3 is the usual choice.");
        ReductionFactor = reductionFactor;
        int k = 0;
        while (minEpochs * Math.Pow(reductionFactor, k + 1) <= maxEpochs + 1e-9) k++;
        var rungs = new List<int>();
        for (int i = k; i >= 0; i--)
        {
            int epochs = Math.Max(minEpochs, (int)Math.Round(maxEpochs / Math.Pow(reductionFactor, i)));
            if (rungs.Count == 0 || epochs > rungs[^1]) rungs.Add(epochs);
        }
        Rungs = rungs;
    }

    /// <summary>One rung: every configuration trains to <paramref name="epochs"/> (no early stopping).</summary>
    public static SuccessiveHalving Single(int epochs) => new(epochs, epochs, 2);

    /// <summary>eta: the top 1/eta of a rung are promoted.</summary>
    public int ReductionFactor { get; }

    /// <summary>Epoch budgets, increasing; the last is the full budget.</summary>
    public IReadOnlyList<int> Rungs { get; }

    /// <summary>Configurations per bracket: eta^(rungs - 1) (1 with a single rung).</summary>
    public int BracketSize => (int)Math.Pow(ReductionFactor, Rungs.Count - 1);

    /// <summary>How many of the <paramref name="entering"/> trials of a rung go on to the next: max(1, floor(entering / eta)).</summary>
    public int Promoted(int entering) => Math.Max(1, entering / ReductionFactor);
}
