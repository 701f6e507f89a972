namespace Microsoft.ML.Quantized.Sweep;

/// <summary>What a trial runner returns after training a configuration to its epoch budget.</summary>
public sealed class TrialReport
{
    /// <summary>Metric name of language-model perplexity (lower is better).</summary>
    public const string Perplexity = "perplexity";

    /// <summary>Metric name of classification accuracy (higher is better).</summary>
    public const string Accuracy = "accuracy";

    /// <summary>Metric name of the area under the ROC curve (higher is better).</summary>
    public const string Auc = "auc";

    /// <summary>A report of one metric.</summary>
    public TrialReport(string metricName, double value, long packedBytes)
        : this(new Dictionary<string, double> { [metricName ?? throw new ArgumentNullException(nameof(metricName))] = value }, packedBytes)
    {
    }

    /// <summary>A report of several metrics (names are case-insensitive).</summary>
    public TrialReport(IReadOnlyDictionary<string, double> metrics, long packedBytes)
    {
        ArgumentNullException.ThrowIfNull(metrics);
        if (packedBytes < 0)
            throw new ArgumentOutOfRangeException(nameof(packedBytes), packedBytes, "TrialReport.PackedBytes must be zero or positive (the packed model size in bytes).");
        Metrics = new Dictionary<string, double>(metrics, StringComparer.OrdinalIgnoreCase);
        PackedBytes = packedBytes;
    }

    /// <summary>Metrics by name (case-insensitive), e.g. <c>perplexity</c>, <c>accuracy</c>.</summary>
    public IReadOnlyDictionary<string, double> Metrics { get; }

    /// <summary>Bytes of the packed model (<see cref="ModelSizeReport.PackedBytes"/>).</summary>
    public long PackedBytes { get; }

    /// <summary>Where the runner saved the trained model, if it did (so the best model can be loaded). Default null.</summary>
    public string? ModelPath { get; init; }
}
