using Microsoft.ML.Runtime;

namespace Microsoft.ML.Quantized;

/// <summary>
/// Training progress as ML.NET reports it: a line per report on the channel (the MLContext's log), the latest epoch,
/// step and loss on an <see cref="IProgressChannel"/> (what ML.NET's progress reporting pulls), and the caller's
/// <see cref="IProgress{T}"/>. Dispose it when training ends.
/// </summary>
internal sealed class ChannelProgress : IProgress<TrainingProgress>, IDisposable
{
    private readonly IChannel _channel;
    private readonly IProgress<TrainingProgress>? _inner;
    private readonly string _prefix;
    private readonly string _unit;
    private readonly IProgressChannel _progress;
    private TrainingProgress? _last;

    /// <param name="host">The host whose progress channel is opened.</param>
    /// <param name="channel">The channel the lines go to.</param>
    /// <param name="inner">The caller's progress, or null.</param>
    /// <param name="prefix">Starts each line, e.g. "KURE " (or empty).</param>
    /// <param name="unit">What <see cref="TrainingProgress.UnitsPerSecond"/> counts, e.g. "tokens"; null leaves the rate out.</param>
    public ChannelProgress(IHost host, IChannel channel, IProgress<TrainingProgress>? inner, string prefix, string? unit)
    {
        _channel = channel;
        _inner = inner;
        _prefix = prefix;
        _unit = unit ?? "";
        _progress = host.StartProgressChannel(prefix + "training");
        _progress.SetHeader(new ProgressHeader(["Loss"], ["Step", "Epoch"]), entry =>
        {
            if (Volatile.Read(ref _last) is not { } last) return;
            entry.SetProgress(0, last.Step, last.StepsPerEpoch);
            entry.SetProgress(1, last.Epoch, last.Epochs);
            entry.SetMetric(0, last.Loss);
        });
    }

    public void Report(TrainingProgress value)
    {
        Volatile.Write(ref _last, value);
        var validation = value.ValidationLoss is double v ? $", validation loss {v:F4}" : "";
        var rate = _unit.Length == 0 ? "" : $", {value.UnitsPerSecond:F0} {_unit}/s";
        _channel.Info($"{_prefix}Epoch {value.Epoch}/{value.Epochs}, step {value.Step}/{value.StepsPerEpoch}: loss {value.Loss:F4}{validation}, " +
                      $"learning rate {value.LearningRate:G4}{rate}.");
        _inner?.Report(value);
    }

    public void Dispose() => _progress.Dispose();
}
