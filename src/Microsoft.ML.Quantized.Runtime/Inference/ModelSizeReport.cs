using System.Globalization;

namespace Microsoft.ML.Quantized;

/// <summary>
/// The honest size of a packed model: every stored byte is counted, including per-row or per-tensor scales,
/// the padding that byte-aligns each packed row, and each packed matrix's fixed 20-byte header and checksum.
/// Byte figures in <see cref="ToString"/> use decimal units (1 KB = 1,000 bytes, 1 MB = 1,000,000 bytes).
/// </summary>
public sealed record ModelSizeReport
{
    internal ModelSizeReport(long quantizedParameterCount, long floatParameterCount, long quantizedPayloadBytes, long packedBytes)
    {
        QuantizedParameterCount = quantizedParameterCount;
        FloatParameterCount = floatParameterCount;
        QuantizedPayloadBytes = quantizedPayloadBytes;
        ParameterCount = quantizedParameterCount + floatParameterCount;
        BitsPerQuantizedWeight = quantizedParameterCount == 0 ? 0.0 : 8.0 * quantizedPayloadBytes / quantizedParameterCount;
        PackedBytes = packedBytes;
        Float32Bytes = 4 * ParameterCount;
        CompressionRatio = packedBytes == 0 ? 1.0 : (double)Float32Bytes / packedBytes;
    }

    /// <summary>All parameters of the model: <see cref="QuantizedParameterCount"/> + <see cref="FloatParameterCount"/>.</summary>
    public long ParameterCount { get; }

    /// <summary>Weights stored as low-bit codes (1..8 bits each).</summary>
    public long QuantizedParameterCount { get; }

    /// <summary>Parameters stored as float32 (biases, normalization gains, unquantized layers such as embeddings when not quantized).</summary>
    public long FloatParameterCount { get; }

    /// <summary>
    /// Storage of the quantized tensors in bits per weight, scales included: (packed code bits, row padding included,
    /// + 32 bits per scale) / <see cref="QuantizedParameterCount"/>. The fixed per-matrix header is not part of it
    /// (it is in <see cref="PackedBytes"/>). 0 when nothing is quantized.
    /// </summary>
    public double BitsPerQuantizedWeight { get; }

    /// <summary>Bytes of the quantized tensors' codes (row padding included) and scales, without matrix headers.</summary>
    internal long QuantizedPayloadBytes { get; }

    /// <summary>Bytes of the packed model: every packed matrix (header, codes, scales) + 4 bytes per float32 parameter.</summary>
    public long PackedBytes { get; }

    /// <summary>Bytes of the same model with every parameter as float32: 4 * <see cref="ParameterCount"/>.</summary>
    public long Float32Bytes { get; }

    /// <summary><see cref="Float32Bytes"/> / <see cref="PackedBytes"/> (1 for an empty model).</summary>
    public double CompressionRatio { get; }

    /// <summary>
    /// Builds the report from the packed matrices and the count of other float32 parameters. A matrix in
    /// <paramref name="quantized"/> with the <see cref="CodeLayout.Float"/> layout counts as float parameters.
    /// </summary>
    internal static ModelSizeReport From(IEnumerable<PackedMatrix> quantized, long floatParameterCount)
    {
        ArgumentNullException.ThrowIfNull(quantized);
        ArgumentOutOfRangeException.ThrowIfNegative(floatParameterCount);
        long quantizedCount = 0, floatCount = floatParameterCount, payload = 0, packed = 4 * floatParameterCount;
        foreach (var m in quantized)
        {
            ArgumentNullException.ThrowIfNull(m, nameof(quantized));
            packed += m.SizeInBytes;
            if (m.Layout == CodeLayout.Float)
            {
                floatCount += m.WeightCount;
            }
            else
            {
                quantizedCount += m.WeightCount;
                payload += m.PayloadBytes;
            }
        }
        return new ModelSizeReport(quantizedCount, floatCount, payload, packed);
    }

    /// <summary>
    /// One line, e.g. <c>1.23 M params, 2.05 bits/weight (quantized part), 312.4 KB packed vs 4.9 MB float32 (15.7x)</c>.
    /// </summary>
    public override string ToString()
    {
        var ci = CultureInfo.InvariantCulture;
        string bits = QuantizedParameterCount == 0
            ? "no quantized weights"
            : string.Format(ci, "{0:F2} bits/weight (quantized part)", BitsPerQuantizedWeight);
        return string.Format(ci, "{0} params, {1}, {2} packed vs {3} float32 ({4:F1}x)",
            FormatCount(ParameterCount), bits, FormatBytes(PackedBytes), FormatBytes(Float32Bytes), CompressionRatio);
    }

    private static string FormatCount(long n) => n switch
    {
        < 1_000 => n.ToString(CultureInfo.InvariantCulture),
        < 1_000_000 => (n / 1e3).ToString("F2", CultureInfo.InvariantCulture) + " K",
        < 1_000_000_000 => (n / 1e6).ToString("F2", CultureInfo.InvariantCulture) + " M",
        _ => (n / 1e9).ToString("F2", CultureInfo.InvariantCulture) + " G",
    };

    private static string FormatBytes(long n) => n switch
    {
        < 1_000 => n.ToString(CultureInfo.InvariantCulture) + " B",
        < 1_000_000 => (n / 1e3).ToString("F1", CultureInfo.InvariantCulture) + " KB",
        < 1_000_000_000 => (n / 1e6).ToString("F1", CultureInfo.InvariantCulture) + " MB",
        _ => (n / 1e9).ToString("F1", CultureInfo.InvariantCulture) + " GB",
    };
}
