namespace Microsoft.ML.Quantized;

/// <summary>
/// Options of <see cref="PackedModel.ExportToOnnx(Stream, OnnxExportOptions?)"/>. The exported graph uses the standard
/// ONNX domain at opset <see cref="Opset"/>.
/// </summary>
public sealed class OnnxExportOptions
{
    /// <summary>The opset the exported graphs declare (17; per-axis <c>DequantizeLinear</c> needs 13 or later).</summary>
    public const int Opset = 17;

    /// <summary>How weights are stored. Default <see cref="OnnxWeightFormat.Float"/>.</summary>
    public OnnxWeightFormat WeightFormat { get; set; } = OnnxWeightFormat.Float;

    /// <summary>
    /// Language models only: output <c>log_probabilities</c> (a <c>LogSoftmax</c> over the vocabulary) instead of
    /// <c>logits</c>. Default false (logits).
    /// </summary>
    public bool LogProbabilities { get; set; }
}
