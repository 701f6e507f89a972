namespace Microsoft.ML.Quantized.Sweep;

/// <summary>
/// What a sweep optimizes: a metric the trial runner reports (by name) and its direction, or a custom value computed
/// from a trial's report (e.g. perplexity plus a size penalty). The packed model size is the second objective of
/// every sweep: see <see cref="SweepResult.ParetoFront"/> and <see cref="SweepResult.BestUnderBytes"/>.
/// </summary>
public sealed class SweepObjective
{
    private readonly Func<TrialReport, double>? _value;

    private SweepObjective(string name, bool maximize, Func<TrialReport, double>? value)
    {
        if (string.IsNullOrWhiteSpace(name))
            throw new ArgumentException("An objective needs a metric name, e.g. \"perplexity\" or \"accuracy\".", nameof(name));
        Name = name;
        HigherIsBetter = maximize;
        _value = value;
    }

    /// <summary>Metric name (also the metric column of <see cref="SweepResult.ToCsv"/>).</summary>
    public string Name { get; }

    /// <summary>True when larger is better.</summary>
    public bool HigherIsBetter { get; }

    /// <summary>Minimize the <c>perplexity</c> metric (language models; the default objective).</summary>
    public static SweepObjective MinimizePerplexity { get; } = Minimize(TrialReport.Perplexity);

    /// <summary>Maximize the <c>accuracy</c> metric (classifiers).</summary>
    public static SweepObjective MaximizeAccuracy { get; } = Maximize(TrialReport.Accuracy);

    /// <summary>Maximize the <c>auc</c> metric (binary classifiers).</summary>
    public static SweepObjective MaximizeAuc { get; } = Maximize(TrialReport.Auc);

    /// <summary>Minimize the metric the runner reports under <paramref name="metricName"/> (case-insensitive).</summary>
    public static SweepObjective Minimize(string metricName) => new(metricName, false, null);

    /// <summary>Maximize the metric the runner reports under <paramref name="metricName"/> (case-insensitive).</summary>
    public static SweepObjective Maximize(string metricName) => new(metricName, true, null);

    /// <summary>A value computed from each trial's report, e.g. <c>r =&gt; r.Metrics["perplexity"] + 1e-5 * r.PackedBytes</c>.</summary>
    public static SweepObjective Custom(string name, bool maximize, Func<TrialReport, double> value)
    {
        ArgumentNullException.ThrowIfNull(value);
        return new SweepObjective(name, maximize, value);
    }

    /// <summary>E.g. <c>minimize perplexity</c>.</summary>
    public override string ToString() => (HigherIsBetter ? "maximize " : "minimize ") + Name;

    /// <summary>The objective's value for a report; throws <see cref="InvalidOperationException"/> when the metric is missing.</summary>
    internal double ValueOf(TrialReport report)
    {
        if (_value is not null) return _value(report);
        if (report.Metrics.TryGetValue(Name, out var value)) return value;
        throw new InvalidOperationException(
            $"The trial runner reported the metrics [{string.Join(", ", report.Metrics.Keys)}], but the objective needs '{Name}'. " +
            "Report that metric from the runner, or call SetObjective with one of the reported metrics.");
    }

    /// <summary>Lower is better; NaN (a diverged or missing value) is the worst.</summary>
    internal double Loss(double metric) => double.IsNaN(metric) ? double.PositiveInfinity : HigherIsBetter ? -metric : metric;
}
