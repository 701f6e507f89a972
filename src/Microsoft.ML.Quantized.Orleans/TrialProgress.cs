namespace Microsoft.ML.Quantized.Orleans;

/// <summary>
/// A worker grain's answer to a poll: still training, finished (with its outcome), failed (with the error), or unknown (this
/// activation never started the trial: its earlier activation was lost with its silo).
/// </summary>
[GenerateSerializer, Immutable]
internal sealed record TrialProgress(
    [property: Id(0)] TrialProgressState State,
    [property: Id(1)] TrialOutcome? Outcome,
    [property: Id(2)] string? Error)
{
    public static TrialProgress Running { get; } = new(TrialProgressState.Running, null, null);

    public static TrialProgress Unknown { get; } = new(TrialProgressState.Unknown, null, null);
}

/// <summary>Where a worker grain's trial is.</summary>
[GenerateSerializer]
internal enum TrialProgressState
{
    /// <summary>This activation has not started the trial.</summary>
    Unknown,

    /// <summary>Training.</summary>
    Running,

    /// <summary>Finished; the outcome is attached.</summary>
    Completed,

    /// <summary>The runner threw; the error is attached.</summary>
    Failed,
}
