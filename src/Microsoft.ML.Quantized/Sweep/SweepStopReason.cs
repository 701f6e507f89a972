namespace Microsoft.ML.Quantized.Sweep;

/// <summary>Why a sweep ended.</summary>
public enum SweepStopReason
{
    /// <summary>The trial budget (<c>SetMaxModelToExplore</c>) was used up.</summary>
    TrialBudget = 0,
    /// <summary>The time budget (<c>SetTrainingTimeInSeconds</c>) ran out.</summary>
    TimeBudget,
    /// <summary>The caller's cancellation token was cancelled.</summary>
    Cancelled,
    /// <summary>The tuner had nothing new to propose (a finished grid, or a small space fully tried).</summary>
    SearchSpaceExhausted,
}
