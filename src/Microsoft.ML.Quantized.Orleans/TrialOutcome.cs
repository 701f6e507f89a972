using Microsoft.ML.Quantized.Sweep;

namespace Microsoft.ML.Quantized.Orleans;

/// <summary>What a worker grain sends back: the runner's <see cref="TrialReport"/>, the silo that ran the trial and how long the runner took.</summary>
[GenerateSerializer, Immutable]
internal sealed record TrialOutcome(
    [property: Id(0)] Dictionary<string, double> Metrics,
    [property: Id(1)] long PackedBytes,
    [property: Id(2)] string? ModelPath,
    [property: Id(3)] string Silo,
    [property: Id(4)] double RunSeconds)
{
    /// <summary>The outcome of <paramref name="report"/>, trained on <paramref name="silo"/> in <paramref name="runSeconds"/>.</summary>
    public static TrialOutcome Of(TrialReport report, string silo, double runSeconds) =>
        new(new Dictionary<string, double>(report.Metrics, StringComparer.OrdinalIgnoreCase), report.PackedBytes, report.ModelPath, silo, runSeconds);

    /// <summary>The report the experiment records.</summary>
    public TrialReport ToReport() => new(Metrics, PackedBytes) { ModelPath = ModelPath };
}
