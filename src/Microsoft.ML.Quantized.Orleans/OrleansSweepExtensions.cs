using Microsoft.ML.Quantized.Sweep;

namespace Microsoft.ML.Quantized.Orleans;

/// <summary>Runs a <see cref="QuantizationExperiment"/>'s trials on an Orleans cluster.</summary>
public static class OrleansSweepExtensions
{
    /// <summary>
    /// Sends the experiment's trials to the cluster's worker silos (<see cref="OrleansTrialRunner"/>) under
    /// <paramref name="workload"/>, after checking that the workers offer it. The rest of the experiment (search space, tuner,
    /// successive halving, state file, checkpoints) is configured as for a local sweep; set its parallelism to the number of
    /// trials the cluster should train at once (e.g. one per silo core). Checkpoint and state folders must be on storage
    /// every silo and this process can reach for a trial to resume on another silo.
    /// </summary>
    /// <param name="experiment">The experiment.</param>
    /// <param name="grains">The cluster client.</param>
    /// <param name="workload">The workload name the worker silos registered with <see cref="SweepWorkerExtensions.AddQuantizedSweepWorker"/>.</param>
    /// <param name="maxAttempts">Attempts per trial run before it counts as failed; default 2.</param>
    /// <param name="cancellationToken">Cancels the check.</param>
    /// <exception cref="InvalidOperationException">The workers do not offer <paramref name="workload"/>.</exception>
    public static async Task<QuantizationExperiment> UseOrleansAsync(this QuantizationExperiment experiment, IGrainFactory grains, string workload,
        int maxAttempts = OrleansTrialRunner.DefaultMaxAttempts, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(experiment);
        var runner = new OrleansTrialRunner(grains, workload, maxAttempts);
        await runner.CheckWorkersAsync(cancellationToken).ConfigureAwait(false);
        return experiment.SetTrialRunner(runner);
    }
}
