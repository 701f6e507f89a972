using Microsoft.ML.Quantized.Sweep;

namespace Microsoft.ML.Quantized.Orleans;

/// <summary>Runs a <see cref="QuantizationExperiment"/>'s trials on an Orleans cluster.</summary>
public static class OrleansSweepExtensions
{
    /// <summary>
    /// Sends the experiment's trials to the cluster's worker silos under <paramref name="workload"/> (an
    /// <see cref="OrleansTrialRunner"/> with its defaults), after checking that the workers offer it. The rest of the
    /// experiment (search space, tuner, successive halving, state file, checkpoints) is configured as for a local sweep; set
    /// its parallelism to the number of trials the cluster should train at once (e.g. one per worker core). Checkpoint and
    /// state folders must be on storage every silo and this process can reach for a trial to resume on another silo.
    /// </summary>
    /// <param name="experiment">The experiment.</param>
    /// <param name="grains">The cluster client.</param>
    /// <param name="workload">The workload name the worker silos registered with <see cref="SweepWorkerExtensions.AddQuantizedSweepWorker"/>.</param>
    /// <param name="cancellationToken">Cancels the check.</param>
    /// <exception cref="InvalidOperationException">The workers do not offer <paramref name="workload"/>.</exception>
    public static Task<QuantizationExperiment> UseOrleansAsync(this QuantizationExperiment experiment, IGrainFactory grains, string workload,
        CancellationToken cancellationToken = default) =>
        experiment.UseOrleansAsync(new OrleansTrialRunner(grains, workload), cancellationToken);

    /// <summary>
    /// Sends the experiment's trials to the cluster through <paramref name="runner"/> (its attempts, poll interval and retry
    /// delay as set), after checking that the workers offer its workload; otherwise as the overload with a workload name.
    /// </summary>
    /// <exception cref="InvalidOperationException">The workers do not offer the runner's workload.</exception>
    public static async Task<QuantizationExperiment> UseOrleansAsync(this QuantizationExperiment experiment, OrleansTrialRunner runner,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(experiment);
        ArgumentNullException.ThrowIfNull(runner);
        await runner.CheckWorkersAsync(cancellationToken).ConfigureAwait(false);
        return experiment.SetTrialRunner(runner);
    }
}
