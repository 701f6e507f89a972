namespace Microsoft.ML.Quantized;

/// <summary>How an ONNX export stores the weight matrices (<see cref="OnnxExportOptions.WeightFormat"/>).</summary>
public enum OnnxWeightFormat
{
    /// <summary>Float32 initializers holding the dequantized weights: runs on every ONNX runtime. The default.</summary>
    Float,

    /// <summary>
    /// Int8 initializers holding the quantized codes, each followed by a <c>DequantizeLinear</c> with per-row scales
    /// (per-axis, opset 13 and later; weight normalization folded into the scales): about 4x smaller than
    /// <see cref="Float"/>, and runtimes that fuse QDQ patterns can use integer kernels. A matrix that is not one scale
    /// times integers per row (float weights, multi-bit binary-bases quantizers such as alternating multi-bit) stays float.
    /// </summary>
    QuantizeDequantize,
}
