namespace Microsoft.ML.Quantized.Sweep;

/// <summary>One trial of a sweep: its configuration, status and results (of the last rung it reached).</summary>
public sealed class TrialResult
{
    internal TrialResult(int id, int bracket, QuantizationConfiguration configuration, TrialStatus status,
        IReadOnlyList<RungResult> rungs, string? error, double seconds)
    {
        Id = id;
        Bracket = bracket;
        Configuration = configuration;
        Status = status;
        Rungs = rungs;
        Error = error;
        Duration = TimeSpan.FromSeconds(seconds);
    }

    /// <summary>Trial id, 0-based, in proposal order.</summary>
    public int Id { get; }

    /// <summary>The successive-halving bracket (the batch of configurations proposed together).</summary>
    public int Bracket { get; }

    /// <summary>What was trained.</summary>
    public QuantizationConfiguration Configuration { get; }

    /// <summary>How the trial ended.</summary>
    public TrialStatus Status { get; }

    /// <summary>Results at each epoch budget reached, in order.</summary>
    public IReadOnlyList<RungResult> Rungs { get; }

    /// <summary>The objective's value at the last rung reached; NaN when no rung finished.</summary>
    public double Metric => Rungs.Count == 0 ? double.NaN : Rungs[^1].Metric;

    /// <summary>Every metric of the last rung reached (empty when none finished).</summary>
    public IReadOnlyDictionary<string, double> Metrics => Rungs.Count == 0 ? new Dictionary<string, double>() : Rungs[^1].Metrics;

    /// <summary>Packed model size in bytes at the last rung reached; 0 when none finished.</summary>
    public long PackedBytes => Rungs.Count == 0 ? 0 : Rungs[^1].PackedBytes;

    /// <summary>Epochs trained (the last rung reached); 0 when none finished.</summary>
    public int EpochsUsed => Rungs.Count == 0 ? 0 : Rungs[^1].Epochs;

    /// <summary>Where the runner saved the model of the last rung, if it did.</summary>
    public string? ModelPath => Rungs.Count == 0 ? null : Rungs[^1].ModelPath;

    /// <summary>Why the trial failed (exception type and message); null otherwise.</summary>
    public string? Error { get; }

    /// <summary>Wall-clock time the runner spent on this trial, over all its rungs.</summary>
    public TimeSpan Duration { get; }

    /// <summary>E.g. <c>#3 Completed perplexity=5.21 12345 B: cell=gru;...</c>.</summary>
    public override string ToString() => FormattableString.Invariant(
        $"#{Id} {Status} metric={Metric:G5} {PackedBytes} B {EpochsUsed} epochs: {Configuration.Key}{(Error is null ? "" : " error: " + Error)}");
}
