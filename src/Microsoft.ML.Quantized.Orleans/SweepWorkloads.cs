using Microsoft.ML.Quantized.Sweep;

namespace Microsoft.ML.Quantized.Orleans;

/// <summary>
/// The trial runners a worker silo offers, by workload name (see <see cref="SweepWorkerExtensions.AddQuantizedSweepWorker"/>).
/// Each runner is created once per silo, when the silo starts (so a workload whose data the silo cannot read stops the
/// silo with the reason, before it takes any trial), and then shared by the trials it runs.
/// </summary>
public sealed class SweepWorkloads
{
    private readonly Dictionary<string, Func<IServiceProvider, ISweepTrialRunner>> _factories = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ISweepTrialRunner> _runners = new(StringComparer.Ordinal);

    /// <summary>
    /// Registers <paramref name="name"/>: <paramref name="createRunner"/> builds its runner on this silo from the silo's
    /// services, typically reading the training data from a path every silo can read (data reaches workers by reference,
    /// never through grain calls).
    /// </summary>
    /// <exception cref="ArgumentException">The name is empty or already registered.</exception>
    public SweepWorkloads Add(string name, Func<IServiceProvider, ISweepTrialRunner> createRunner)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(createRunner);
        if (!_factories.TryAdd(name, createRunner)) throw new ArgumentException($"The sweep workload '{name}' is registered twice on this silo.", nameof(name));
        return this;
    }

    /// <summary>The registered workload names.</summary>
    public IEnumerable<string> Names => _factories.Keys;

    /// <summary>Creates every runner (at silo start); a failure names the workload.</summary>
    internal void CreateRunners(IServiceProvider services)
    {
        lock (_runners)
        {
            foreach (var (name, factory) in _factories)
            {
                if (_runners.ContainsKey(name)) continue;
                try
                {
                    _runners[name] = factory(services) ?? throw new InvalidOperationException("the factory returned null");
                }
                catch (Exception e)
                {
                    throw new InvalidOperationException($"The sweep workload '{name}' could not create its trial runner on this silo: {e.Message}", e);
                }
            }
        }
    }

    /// <summary>The runner of <paramref name="name"/> on this silo.</summary>
    /// <exception cref="InvalidOperationException">The workload is not registered here.</exception>
    internal ISweepTrialRunner Runner(string name, string silo)
    {
        lock (_runners)
        {
            return _runners.TryGetValue(name, out var runner)
                ? runner
                : throw new InvalidOperationException(
                    $"The sweep workload '{name}' is not registered on silo {silo} (it has: {string.Join(", ", Names.Select(n => $"'{n}'"))}). " +
                    "Register it on every worker silo with AddQuantizedSweepWorker.");
        }
    }
}
