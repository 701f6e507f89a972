namespace Microsoft.ML.Quantized;

/// <summary>One configuration of a <see cref="RobustnessReport"/>: a weight quantizer applied after training and the metric it gives.</summary>
/// <param name="Label">What the row is, e.g. <c>float</c>, <c>as trained</c>, <c>4-bit</c>, <c>step x0.95</c>, <c>power-of-two step</c>.</param>
/// <param name="Quantizer">The weight quantizer's registry name, e.g. <c>none</c>, <c>uniform4</c>, <c>uniform4@0.95</c>, <c>uniform4-pow2</c>.</param>
/// <param name="Bits">Bits per weight (32 for float).</param>
/// <param name="Metric">The metric (for a language model, perplexity: lower is better).</param>
/// <param name="WeightError">
/// Relative reconstruction error of the quantized weights, <c>sqrt(sum ||Q(W) - W||^2 / sum ||W||^2)</c> over the quantized
/// matrices (0 for float).
/// </param>
public sealed record RobustnessReportRow(string Label, string Quantizer, int Bits, double Metric, double WeightError);
