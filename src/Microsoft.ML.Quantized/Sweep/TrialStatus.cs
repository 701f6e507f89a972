namespace Microsoft.ML.Quantized.Sweep;

/// <summary>How a trial ended.</summary>
public enum TrialStatus
{
    /// <summary>Trained to the full epoch budget.</summary>
    Completed = 0,
    /// <summary>Stopped early by successive halving: not in the top 1/eta at a rung.</summary>
    Pruned,
    /// <summary>The trial runner threw; <see cref="TrialResult.Error"/> says why.</summary>
    Failed,
    /// <summary>The sweep stopped (cancellation or time budget) before the trial finished; a resumed sweep continues it.</summary>
    Stopped,
}
