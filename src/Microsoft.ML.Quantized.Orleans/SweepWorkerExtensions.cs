using Microsoft.Extensions.DependencyInjection;
using Orleans.Runtime;

namespace Microsoft.ML.Quantized.Orleans;

/// <summary>Makes an Orleans silo a sweep worker.</summary>
public static class SweepWorkerExtensions
{
    /// <summary>
    /// Adds the sweep worker grain and the workloads <paramref name="configure"/> registers to this silo. Every workload's
    /// runner is created when the silo starts: one that cannot read its data stops the silo with the workload's name and the
    /// reason, before the silo takes any trial.
    /// </summary>
    public static ISiloBuilder AddQuantizedSweepWorker(this ISiloBuilder builder, Action<SweepWorkloads> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configure);
        var workloads = new SweepWorkloads();
        configure(workloads);
        builder.Services.AddSingleton(workloads);
        builder.Services.AddSingleton<ILifecycleParticipant<ISiloLifecycle>>(services => new WorkloadStartup(workloads, services));
        return builder;
    }

    /// <summary>Creates the runners as the silo becomes active.</summary>
    private sealed class WorkloadStartup(SweepWorkloads workloads, IServiceProvider services) : ILifecycleParticipant<ISiloLifecycle>
    {
        public void Participate(ISiloLifecycle lifecycle) =>
            lifecycle.Subscribe(nameof(SweepWorkloads), ServiceLifecycleStage.ApplicationServices, _ =>
            {
                workloads.CreateRunners(services);
                return Task.CompletedTask;
            });
    }
}
