using Microsoft.ML.Quantized.Sweep;

namespace Microsoft.ML.Quantized.Orleans;

/// <summary>
/// An <see cref="ISweepTrialRunner"/> that sends each trial to a worker grain on an Orleans cluster instead of training it
/// in this process: the experiment (tuner, successive halving, state file) stays here, the training runs on whichever silo
/// Orleans places the worker, with the runner that silo registered for <see cref="Workload"/>
/// (<see cref="SweepWorkerExtensions.AddQuantizedSweepWorker"/>). Use it through <c>experiment.UseOrleansAsync(...)</c> (<see cref="OrleansSweepExtensions"/>).
/// </summary>
/// <remarks>
/// Training is started on the worker and then polled (each poll waits up to <see cref="PollWait"/> and answers as soon
/// as the trial ends), so a trial may take longer than any grain-call timeout. An attempt lost with its worker (its silo died, a call timed out) runs again as a new grain
/// activation after <see cref="RetryDelay"/>, which Orleans places afresh; the trial resumes from its checkpoint folder
/// when the silos share it. An attempt whose runner throws runs again too; after <see cref="MaxAttempts"/> such failures
/// (or more than <see cref="MaxWorkerLosses"/> losses) the last error goes to the experiment, which records the trial as
/// failed and goes on. Trials are deterministic per trial (each runs with the experiment's seed), so where a trial runs does not change
/// its result.
/// </remarks>
public sealed class OrleansTrialRunner : ISweepTrialRunner
{
    private readonly IGrainFactory _grains;

    /// <summary>A runner that sends trials of <paramref name="workload"/> to the cluster's worker grains.</summary>
    /// <param name="grains">The cluster client (or a silo's grain factory).</param>
    /// <param name="workload">The workload name the worker silos registered.</param>
    /// <param name="maxAttempts">Attempts per trial run whose runner fails before the trial counts as failed; default 2, at least 1.</param>
    public OrleansTrialRunner(IGrainFactory grains, string workload, int maxAttempts = DefaultMaxAttempts)
    {
        ArgumentNullException.ThrowIfNull(grains);
        ArgumentException.ThrowIfNullOrWhiteSpace(workload);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxAttempts, 1);
        _grains = grains;
        Workload = workload;
        MaxAttempts = maxAttempts;
    }

    /// <summary>Default of <see cref="MaxAttempts"/>: a trial is tried twice, then recorded as failed.</summary>
    public const int DefaultMaxAttempts = 2;

    /// <summary>The workload name the worker silos registered.</summary>
    public string Workload { get; }

    /// <summary>Attempts per trial run whose runner fails before the trial counts as failed.</summary>
    public int MaxAttempts { get; }

    /// <summary>
    /// Attempts lost with their worker (its silo failed, a call timed out) that are run again before the trial counts as
    /// failed; default 3. Such a loss does not count toward <see cref="MaxAttempts"/>: the trial did nothing wrong.
    /// </summary>
    public int MaxWorkerLosses { get; init; } = 3;

    /// <summary>
    /// Wait before running an attempt again after its worker was lost, so that the cluster declares the failed silo dead
    /// first and places the new attempt on a live one; default 10 seconds.
    /// </summary>
    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// The longest a poll of a running trial waits on the worker before answering "still running"; default 5 seconds. A poll
    /// answers as soon as the trial ends, so this bounds how long a lost silo goes unnoticed (a poll unanswered 10 seconds
    /// past it counts the worker as lost), not how late a result arrives. Keep it well under the grain-call timeout.
    /// </summary>
    public TimeSpan PollWait { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>How much longer than <see cref="PollWait"/> a poll may take before its worker counts as lost.</summary>
    private static readonly TimeSpan PollMargin = TimeSpan.FromSeconds(10);

    /// <summary>Every attempt sent so far, in the order they ended: where it ran, its call and training times, or its error.</summary>
    public IReadOnlyList<TrialDispatch> Dispatches
    {
        get
        {
            lock (_dispatches) return _dispatches.ToArray();
        }
    }

    private readonly List<TrialDispatch> _dispatches = new();

    /// <inheritdoc />
    public TrialReport Run(TrialContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        var assignment = TrialAssignment.Of(Workload, context);
        int failures = 0, losses = 0;
        for (int attempt = 1; ; attempt++)
        {
            var grain = _grains.GetGrain<ISweepTrialGrain>(FormattableString.Invariant($"{Workload}/trial-{context.TrialId}/rung-{context.Rung}/attempt-{attempt}"));
            var clock = System.Diagnostics.Stopwatch.StartNew();
            try
            {
                var outcome = RunAttemptAsync(grain, assignment, cancellationToken).GetAwaiter().GetResult();
                Record(new TrialDispatch(context.TrialId, context.Rung, attempt, outcome.Silo, clock.Elapsed.TotalSeconds, outcome.RunSeconds, null));
                return outcome.ToReport();
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                throw;
            }
            catch (Exception e)
            {
                Record(new TrialDispatch(context.TrialId, context.Rung, attempt, null, clock.Elapsed.TotalSeconds, double.NaN, $"{e.GetType().Name}: {e.Message}"));
                bool lost = e is WorkerLostException or TimeoutException or OrleansException;
                if (cancellationToken.IsCancellationRequested || (lost ? ++losses > MaxWorkerLosses : ++failures >= MaxAttempts)) throw;
                // Give the cluster time to declare a failed silo dead, so that the next attempt is placed on a live one.
                if (lost) Task.Delay(RetryDelay, cancellationToken).GetAwaiter().GetResult();
            }
        }
    }

    /// <summary>Starts the attempt on its grain and polls it (each poll waiting up to <see cref="PollWait"/>) until it ends.</summary>
    private async Task<TrialOutcome> RunAttemptAsync(ISweepTrialGrain grain, TrialAssignment assignment, CancellationToken cancellationToken)
    {
        await grain.StartAsync(assignment).ConfigureAwait(false);
        try
        {
            while (true)
            {
                cancellationToken.ThrowIfCancellationRequested();
                // A poll that does not answer within its wait and a margin has lost its worker (a silo that died without closing
                // its connections would otherwise hold the call until the grain-call timeout).
                var progress = await grain.PollAsync(PollWait).WaitAsync(PollWait + PollMargin, cancellationToken).ConfigureAwait(false);
                switch (progress.State)
                {
                    case TrialProgressState.Completed:
                        return progress.Outcome!;
                    case TrialProgressState.Failed:
                        throw new TrialAttemptFailedException(progress.Error ?? "the runner failed");
                    case TrialProgressState.Unknown:
                        throw new WorkerLostException();
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            try
            {
                await grain.CancelAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // The worker may be gone; the trial is cancelled either way.
            }
            throw;
        }
    }

    private void Record(TrialDispatch dispatch)
    {
        lock (_dispatches) _dispatches.Add(dispatch);
    }

    /// <summary>
    /// Checks that a worker grain can be reached and that its silo registered <see cref="Workload"/>; the message says what
    /// is missing.
    /// </summary>
    /// <exception cref="InvalidOperationException">The workload is not registered on the silo that answered.</exception>
    public async Task CheckWorkersAsync(CancellationToken cancellationToken = default)
    {
        var probe = _grains.GetGrain<ISweepTrialGrain>($"{Workload}/check-{Guid.NewGuid():N}");
        var names = await probe.WorkloadsAsync().WaitAsync(cancellationToken).ConfigureAwait(false);
        if (!names.Contains(Workload, StringComparer.Ordinal))
            throw new InvalidOperationException(
                $"The Orleans cluster's worker silos do not offer the sweep workload '{Workload}' (a silo offers: {(names.Length == 0 ? "none" : string.Join(", ", names.Select(n => $"'{n}'")))}). " +
                "Register it on every worker silo with AddQuantizedSweepWorker.");
    }
}
