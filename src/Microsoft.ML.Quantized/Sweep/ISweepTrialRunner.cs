namespace Microsoft.ML.Quantized.Sweep;

/// <summary>
/// Trains one configuration to an epoch budget and measures it. Must be deterministic for a given context (use
/// <see cref="TrialContext.Seed"/>) and should observe the cancellation token between steps. May be called from
/// several threads at once when the experiment's parallelism is above 1.
/// </summary>
public interface ISweepTrialRunner
{
    /// <summary>
    /// Trains <see cref="TrialContext.Configuration"/> to <see cref="TrialContext.Epochs"/> epochs (resuming from
    /// <see cref="TrialContext.CheckpointDirectory"/>) and reports its metrics and packed size. An exception marks
    /// the trial failed; the sweep goes on.
    /// </summary>
    TrialReport Run(TrialContext context, CancellationToken cancellationToken);
}
