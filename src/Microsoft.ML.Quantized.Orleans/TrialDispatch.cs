namespace Microsoft.ML.Quantized.Orleans;

/// <summary>
/// One attempt at a trial run that <see cref="OrleansTrialRunner"/> sent to the cluster: where it ran, how long the call
/// took and how long the runner trained on the worker (their difference is the dispatch overhead: messaging, placement,
/// activation), or why it failed.
/// </summary>
/// <param name="TrialId">The trial.</param>
/// <param name="Rung">The successive-halving rung.</param>
/// <param name="Attempt">1 for the first attempt, 2 for its rerun, ...</param>
/// <param name="Silo">The silo that ran it; null when the attempt failed before a silo answered.</param>
/// <param name="CallSeconds">Seconds from sending the trial to its answer (or failure), on this process.</param>
/// <param name="RunSeconds">Seconds the worker's runner trained; NaN when the attempt failed.</param>
/// <param name="Error">Why the attempt failed; null when it succeeded.</param>
public sealed record TrialDispatch(int TrialId, int Rung, int Attempt, string? Silo, double CallSeconds, double RunSeconds, string? Error)
{
    /// <summary>Seconds of the call not spent training (messaging, placement, activation); NaN for a failed attempt.</summary>
    public double OverheadSeconds => CallSeconds - RunSeconds;
}
