namespace Microsoft.ML.Quantized.Sweep;

/// <summary>A trial's result at one epoch budget (one successive-halving rung).</summary>
/// <param name="Epochs">Total epochs trained.</param>
/// <param name="Metric">The objective's value.</param>
/// <param name="PackedBytes">Packed model size in bytes.</param>
/// <param name="Seconds">Wall-clock seconds of this run (its extra epochs only).</param>
/// <param name="Metrics">Every metric the runner reported.</param>
/// <param name="ModelPath">Where the runner saved the model, if it did.</param>
public sealed record RungResult(int Epochs, double Metric, long PackedBytes, double Seconds,
    IReadOnlyDictionary<string, double> Metrics, string? ModelPath);
