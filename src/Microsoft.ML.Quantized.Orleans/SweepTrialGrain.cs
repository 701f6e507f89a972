using Microsoft.Extensions.Logging;
using Orleans.Placement;
using Orleans.Runtime;

namespace Microsoft.ML.Quantized.Orleans;

/// <summary>
/// The worker grain: runs an assignment with the silo's runner of its workload on a thread-pool thread (training blocks
/// for minutes; the grain's own scheduler stays free), and deactivates when done. Placed on the silo with the fewest
/// activations, so concurrent trials spread over the silos.
/// </summary>
[ActivationCountBasedPlacement]
internal sealed class SweepTrialGrain(SweepWorkloads workloads, ILocalSiloDetails silo, ILogger<SweepTrialGrain> logger) : Grain, ISweepTrialGrain
{
    public async Task<TrialOutcome> RunAsync(TrialAssignment assignment, CancellationToken cancellationToken)
    {
        string where = silo.SiloAddress.ToString();
        var runner = workloads.Runner(assignment.Workload, where);
        logger.LogInformation("Trial {Trial} rung {Rung} ({Workload}) starts on {Silo}.", assignment.TrialId, assignment.Rung, assignment.Workload, where);
        try
        {
            var context = assignment.ToContext();
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var report = await Task.Run(() => runner.Run(context, cancellationToken), cancellationToken);
            return TrialOutcome.Of(report ?? throw new InvalidOperationException("The trial runner returned null instead of a TrialReport."), where, clock.Elapsed.TotalSeconds);
        }
        finally
        {
            DeactivateOnIdle();
        }
    }

    public Task<string[]> WorkloadsAsync() => Task.FromResult(workloads.Names.ToArray());
}
