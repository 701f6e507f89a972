using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized;

/// <summary>
/// The random source of one training run: libtorch generators of its own, not libtorch's process-wide one, so runs on
/// different threads at the same time each give what they give alone. A run installs it on its thread
/// (<see cref="Use"/>) around building its network and training it; initialization, dropout and the stochastic
/// quantizers draw from it (<see cref="For"/>), and the training loop reseeds it at every epoch. Outside a run (a forward
/// called directly), draws come from libtorch's global generator.
/// </summary>
internal sealed class TrainingRandom : IDisposable
{
    [ThreadStatic]
    private static TrainingRandom? _current;

    private readonly TrainingRandom? _previous;
    private readonly Dictionary<string, Generator> _generators = new();
    private long _seed;
    private bool _disposed;

    private TrainingRandom(long seed)
    {
        _seed = seed;
        _previous = _current;
        _current = this;
    }

    /// <summary>Installs a random source seeded with <paramref name="seed"/> on this thread until it is disposed.</summary>
    public static TrainingRandom Use(long seed) => new(seed);

    /// <summary>The generator of this thread's run for tensors on <paramref name="device"/>, or null (libtorch's global one) outside a run.</summary>
    public static Generator? For(Device device) => _current?.GeneratorFor(device);

    /// <summary>Reseeds this thread's run (the global generator outside a run), e.g. at the start of an epoch.</summary>
    public static void Reseed(long seed)
    {
        if (_current is not { } run)
        {
            torch.manual_seed(seed);
            return;
        }
        run._seed = seed;
        foreach (var generator in run._generators.Values) generator.manual_seed(seed);
    }

    /// <summary>Inverted dropout with this thread's run's generator: zeroes each value with probability <paramref name="p"/> and scales the rest by 1 / (1 - p).</summary>
    public static Tensor Dropout(Tensor x, double p)
    {
        if (p <= 0) return x.alias();
        using var scope = NewDisposeScope();
        using var keep = (1 - p).ToScalar();
        var mask = torch.empty_like(x).bernoulli_(1 - p, generator: For(x.device));
        return x.mul(mask).div(keep).MoveToOuterDisposeScope();
    }

    /// <summary>Uniform [0, 1) values shaped like <paramref name="x"/>, from this thread's run's generator.</summary>
    public static Tensor RandLike(Tensor x) => Rand(x.shape, x.dtype, x.device);

    /// <summary>Uniform [0, 1) values of the given shape, type and device, from this thread's run's generator.</summary>
    public static Tensor Rand(long[] shape, ScalarType dtype, Device device) => torch.rand(shape, dtype: dtype, device: device, generator: For(device));

    /// <summary>Standard normal values of the given shape, type and device, from this thread's run's generator.</summary>
    public static Tensor Randn(long[] shape, ScalarType dtype, Device device) => torch.randn(shape, dtype: dtype, device: device, generator: For(device));

    private Generator GeneratorFor(Device device)
    {
        string key = device.ToString();
        if (!_generators.TryGetValue(key, out var generator))
            _generators[key] = generator = new Generator(unchecked((ulong)_seed), device);
        return generator;
    }

    /// <summary>Restores the source that was installed before this one, and frees the generators.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        if (ReferenceEquals(_current, this)) _current = _previous;
        foreach (var generator in _generators.Values) generator.Dispose();
    }
}
