namespace Microsoft.ML.Quantized.Sweep;

/// <summary>Everything a tuner may use to propose the next configuration.</summary>
public sealed class TunerContext
{
    private readonly IReadOnlySet<string> _triedKeys;

    internal TunerContext(QuantizationSearchSpace searchSpace, SweepObjective objective, int seed, int trialIndex, int attempt,
        IReadOnlyList<TrialResult> history, IReadOnlySet<string> triedKeys)
    {
        SearchSpace = searchSpace;
        Objective = objective;
        Seed = seed;
        TrialIndex = trialIndex;
        Attempt = attempt;
        History = history;
        _triedKeys = triedKeys;
    }

    /// <summary>The space to propose from (validated).</summary>
    public QuantizationSearchSpace SearchSpace { get; }

    /// <summary>What the sweep optimizes (use <see cref="Loss"/> to rank results).</summary>
    public SweepObjective Objective { get; }

    /// <summary>The experiment's seed.</summary>
    public int Seed { get; }

    /// <summary>The id the proposed trial will get.</summary>
    public int TrialIndex { get; }

    /// <summary>0 on the first request for this trial; higher when earlier proposals were already tried.</summary>
    public int Attempt { get; }

    /// <summary>Trials that have results or failed so far (any status, by id); trials still waiting for their first run are left out.</summary>
    public IReadOnlyList<TrialResult> History { get; }

    /// <summary>Whether a configuration was already proposed in this sweep (including the current batch).</summary>
    public bool IsTried(QuantizationConfiguration configuration) => _triedKeys.Contains(configuration.Key);

    /// <summary>A trial's loss under the objective: lower is better; failed or missing results are +infinity.</summary>
    public double Loss(TrialResult trial) =>
        trial.Status == TrialStatus.Failed || trial.Rungs.Count == 0 ? double.PositiveInfinity : Objective.Loss(trial.Metric);

    /// <summary>A random generator determined by the seed, the trial index and the attempt (same inputs, same draws).</summary>
    public Random CreateRandom()
    {
        unchecked
        {
            uint h = 2166136261;
            foreach (var v in new[] { Seed, TrialIndex, Attempt })
            {
                h = (h ^ (uint)v) * 16777619;
                h ^= h >> 15;
                h *= 0x2c1b3c6d;
                h ^= h >> 12;
            }
            return new Random((int)(h & 0x7FFFFFFF));
        }
    }
}
