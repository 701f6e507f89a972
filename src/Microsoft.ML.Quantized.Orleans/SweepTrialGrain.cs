using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Orleans.Placement;
using Orleans.Runtime;

namespace Microsoft.ML.Quantized.Orleans;

/// <summary>
/// The worker grain: trains an assignment with the silo's runner of its workload on a thread-pool thread (training blocks
/// for minutes; the grain's own scheduler stays free to answer polls), answers each poll when the trial ends or after the
/// poll's wait, keeps the outcome until it is polled, then deactivates. Placed on the silo with the fewest activations, so concurrent trials spread over the silos.
/// </summary>
[ActivationCountBasedPlacement]
internal sealed class SweepTrialGrain(SweepWorkloads workloads, ILocalSiloDetails silo, ILogger<SweepTrialGrain> logger) : Grain, ISweepTrialGrain
{
    private readonly CancellationTokenSource _cancel = new();
    private Task<TrialOutcome>? _training;

    public Task StartAsync(TrialAssignment assignment)
    {
        if (_training is not null) return Task.CompletedTask;
        string where = silo.SiloAddress.ToString();
        var runner = workloads.Runner(assignment.Workload, where);
        var context = assignment.ToContext();
        var token = _cancel.Token;
        logger.LogInformation("Trial {Trial} rung {Rung} ({Workload}) starts on {Silo}.", assignment.TrialId, assignment.Rung, assignment.Workload, where);
        _training = Task.Run(() =>
        {
            var clock = Stopwatch.StartNew();
            var report = runner.Run(context, token) ?? throw new InvalidOperationException("The trial runner returned null instead of a TrialReport.");
            return TrialOutcome.Of(report, where, clock.Elapsed.TotalSeconds);
        }, token);
        return Task.CompletedTask;
    }

    public async Task<TrialProgress> PollAsync(TimeSpan wait)
    {
        if (_training is null) return TrialProgress.Unknown;
        if (!_training.IsCompleted) await Task.WhenAny(_training, Task.Delay(wait));
        if (!_training.IsCompleted)
        {
            DelayDeactivation(TimeSpan.FromMinutes(10));
            return TrialProgress.Running;
        }
        DeactivateOnIdle();
        return _training.Status == TaskStatus.RanToCompletion
            ? new TrialProgress(TrialProgressState.Completed, _training.Result, null)
            : new TrialProgress(TrialProgressState.Failed, null, Describe(_training.Exception?.GetBaseException()));
    }

    public Task CancelAsync()
    {
        _cancel.Cancel();
        return Task.CompletedTask;
    }

    public Task<string[]> WorkloadsAsync()
    {
        DeactivateOnIdle();
        return Task.FromResult(workloads.Names.ToArray());
    }

    private static string Describe(Exception? e) => e is null ? "cancelled" : $"{e.GetType().Name}: {e.Message}";
}
