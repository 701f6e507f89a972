namespace Microsoft.ML.Quantized.Sweep;

/// <summary>
/// Receives a sweep's progress (as AutoML's <c>IMonitor</c>). Calls are serialized (never concurrent), and come
/// from the sweep's worker threads.
/// </summary>
public interface ISweepMonitor
{
    /// <summary>A trial starts a run (its first rung, or a promotion to a larger epoch budget).</summary>
    void ReportRunningTrial(TrialContext context);

    /// <summary>A trial reached its final status <see cref="TrialStatus.Completed"/> or <see cref="TrialStatus.Pruned"/>.</summary>
    void ReportCompletedTrial(TrialResult result);

    /// <summary>A trial failed; <see cref="TrialResult.Error"/> says why.</summary>
    void ReportFailedTrial(TrialResult result);
}

/// <summary>Adapts an <see cref="IProgress{T}"/> to a monitor: completed, pruned and failed trials are reported.</summary>
internal sealed class ProgressMonitor(IProgress<TrialResult> progress) : ISweepMonitor
{
    public void ReportRunningTrial(TrialContext context)
    {
    }

    public void ReportCompletedTrial(TrialResult result) => progress.Report(result);

    public void ReportFailedTrial(TrialResult result) => progress.Report(result);
}
