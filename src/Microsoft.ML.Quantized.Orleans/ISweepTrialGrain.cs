using Orleans.Concurrency;

namespace Microsoft.ML.Quantized.Orleans;

/// <summary>
/// A worker that trains one trial on whichever silo Orleans places it. Keyed by workload, trial, rung and attempt, so a
/// retried attempt is a new activation, placed afresh (on another silo when its first silo has failed). Training takes
/// minutes to hours, longer than any sensible grain-call timeout, so the caller starts it and then polls with calls that
/// each wait a few seconds at most (a long poll: the answer comes as soon as the trial ends); a lost silo shows within a
/// poll as a failed call or as an activation that knows no trial.
/// </summary>
internal interface ISweepTrialGrain : IGrainWithStringKey
{
    /// <summary>Starts the assignment with its workload's runner on this silo (once; a repeated call does nothing).</summary>
    Task StartAsync(TrialAssignment assignment);

    /// <summary>
    /// Where the trial is, after waiting up to <paramref name="wait"/> for it to end (keep it well under the grain-call
    /// timeout); a finished trial's outcome, after which the activation goes away.
    /// </summary>
    Task<TrialProgress> PollAsync(TimeSpan wait);

    /// <summary>Asks the runner to stop (its cancellation token); answered even while a poll waits.</summary>
    [AlwaysInterleave]
    Task CancelAsync();

    /// <summary>The workloads this grain's silo has registered (to check a workload before a sweep starts).</summary>
    Task<string[]> WorkloadsAsync();
}
