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
        _seconds = seconds;
    }

    private readonly double _seconds;

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

    /// <summary>
    /// Where the runner saved the model of the last rung, if it did. Null when it did not, and also when the sweep ran in
    /// its own temporary folder (no <see cref="QuantizationExperiment.SetStateFile"/> or
    /// <see cref="QuantizationExperiment.SetCheckpointDirectory"/>), which is deleted when the sweep ends: then the models
    /// of <see cref="SweepResult.ParetoFront"/> (which holds <see cref="SweepResult.Best"/>) are kept in memory instead;
    /// read them with <see cref="OpenModel"/>.
    /// </summary>
    public string? ModelPath => Rungs.Count == 0 ? null : Rungs[^1].ModelPath;

    /// <summary>
    /// Opens the trial's saved model for reading (e.g. for <see cref="QuantizedSequenceClassifier.Load(Stream, string)"/>,
    /// <see cref="QuantizedLanguageModel.Load(Stream, string)"/> or <c>TransformerTrialRunner.CreateTransformer</c>): the copy
    /// kept in memory when the sweep's temporary folder was deleted, else the file at <see cref="ModelPath"/>. Null when the
    /// trial has no saved model (it failed, its runner saved none, or it was neither best nor on the Pareto front of a sweep
    /// that ran in a temporary folder). Dispose the stream.
    /// </summary>
    /// <exception cref="IOException">The file at <see cref="ModelPath"/> can no longer be read (e.g. it was deleted).</exception>
    public Stream? OpenModel()
    {
        if (_model is not null) return new MemoryStream(_model, writable: false);
        return ModelPath is { } path ? File.OpenRead(path) : null;
    }

    /// <summary>Whether the model is held in memory (its temporary file was deleted).</summary>
    internal bool HasModelInMemory => _model is not null;

    /// <summary>
    /// This trial with its model held in memory (<paramref name="model"/>, the bytes of its model file) and no model path
    /// (its folder is about to be deleted); or, with <paramref name="model"/> null, with no model at all.
    /// </summary>
    internal TrialResult WithoutModelFile(byte[]? model) =>
        new(Id, Bracket, Configuration, Status, Rungs.Select(r => r with { ModelPath = null }).ToArray(), Error, _seconds) { _model = model };

    private byte[]? _model;

    /// <summary>Why the trial failed (exception type and message); null otherwise.</summary>
    public string? Error { get; }

    /// <summary>Wall-clock time the runner spent on this trial, over all its rungs.</summary>
    public TimeSpan Duration { get; }

    /// <summary>E.g. <c>#3 Completed perplexity=5.21 12345 B: cell=gru;...</c>.</summary>
    public override string ToString() => FormattableString.Invariant(
        $"#{Id} {Status} metric={Metric:G5} {PackedBytes} B {EpochsUsed} epochs: {Configuration.Key}{(Error is null ? "" : " error: " + Error)}");
}
