using Microsoft.ML.Runtime;

namespace Microsoft.ML.Quantized;

/// <summary>
/// A cancellation token for long work on an ML.NET host: it fires when the caller's token does, or when
/// <c>MLContext.CancelExecution()</c> cancels the host (ML.NET's own trainers see that through <c>Host.CheckAlive()</c>
/// between iterations; training here checks its token every step, so the host is polled every 50 ms and after every
/// progress report that goes through <see cref="Observe"/>). Dispose it when the work ends.
/// </summary>
internal sealed class HostCancellation : IDisposable
{
    private const int PollMilliseconds = 50;
    private readonly CancellationTokenSource _source;
    private readonly Timer? _timer;
    private readonly ICancelable? _host;
    private readonly object _sync = new();
    private bool _disposed;

    public HostCancellation(IHost host, CancellationToken token)
    {
        _source = CancellationTokenSource.CreateLinkedTokenSource(token);
        _host = host as ICancelable;
        if (_host is not null) _timer = new Timer(_ => Poll(), null, PollMilliseconds, PollMilliseconds);
    }

    /// <summary>Cancelled by the caller's token or by the host.</summary>
    public CancellationToken Token => _source.Token;

    /// <summary><paramref name="inner"/>, and after each of its reports a look at whether the host was cancelled.</summary>
    public IProgress<TrainingProgress> Observe(IProgress<TrainingProgress> inner) => new Observer(this, inner);

    private void Poll()
    {
        if (_host is not { IsCanceled: true }) return;
        lock (_sync)
        {
            if (!_disposed) _source.Cancel();
        }
    }

    public void Dispose()
    {
        lock (_sync)
        {
            if (_disposed) return;
            _disposed = true;
        }
        _timer?.Dispose();
        _source.Dispose();
    }

    private sealed class Observer(HostCancellation owner, IProgress<TrainingProgress> inner) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value)
        {
            inner.Report(value);
            owner.Poll();
        }
    }
}
