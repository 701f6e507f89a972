namespace Microsoft.ML.Quantized.Orleans;

/// <summary>
/// A worker that trains one trial on whichever silo Orleans places it. Keyed by workload, trial, rung and attempt, so a
/// retried attempt is a new activation, placed afresh (on another silo when its first silo has failed).
/// </summary>
internal interface ISweepTrialGrain : IGrainWithStringKey
{
    /// <summary>Runs the assignment with its workload's runner on this silo.</summary>
    Task<TrialOutcome> RunAsync(TrialAssignment assignment, CancellationToken cancellationToken);

    /// <summary>The workloads this grain's silo has registered (to check a workload before a sweep starts).</summary>
    Task<string[]> WorkloadsAsync();
}
