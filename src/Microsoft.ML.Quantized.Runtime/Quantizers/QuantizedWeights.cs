namespace Microsoft.ML.Quantized;

/// <summary>How integer codes map back to values; see <see cref="QuantizedWeights"/>.</summary>
internal enum CodeLayout
{
    /// <summary>Float32 values, not quantized (codes unused).</summary>
    Float,
    /// <summary>1 bit per value: code 1 means +scale, code 0 means -scale.</summary>
    Sign,
    /// <summary>Bits-wide two's complement integer: value = scale * code.</summary>
    SignedInteger,
    /// <summary>Bits binary planes: value = sum_i scale_i * (bit_i ? +1 : -1), Bits scales per group.</summary>
    BinaryBases,
}

/// <summary>
/// The deployable form of a quantized 2-D weight matrix: one unsigned code per weight (lowest bits used)
/// and float scales per group (a group is the whole tensor, or one row with per-row scales).
/// Decoding it reproduces the quantizer's evaluation-mode output exactly.
/// </summary>
internal sealed record QuantizedWeights(
    CodeLayout Layout,
    int Bits,
    int Rows,
    int Columns,
    bool PerRow,
    int[] Codes,
    float[] Scales,
    float[]? FloatValues = null)
{
    /// <summary>Number of scale groups: rows when per-row, else 1.</summary>
    public int Groups => PerRow ? Rows : 1;

    /// <summary>Scales stored for each group (Bits for <see cref="CodeLayout.BinaryBases"/>, else 1).</summary>
    public int ScalesPerGroup => Layout == CodeLayout.BinaryBases ? Bits : 1;

    /// <summary>Decodes weight (row, column).</summary>
    public float Decode(int row, int column)
    {
        int i = row * Columns + column;
        if (Layout == CodeLayout.Float) return FloatValues![i];
        int g = PerRow ? row : 0;
        int code = Codes[i];
        switch (Layout)
        {
            case CodeLayout.Sign:
                return (code & 1) == 1 ? Scales[g] : -Scales[g];
            case CodeLayout.SignedInteger:
                int signBit = 1 << (Bits - 1);
                int signedCode = (code & signBit) != 0 ? code - (1 << Bits) : code;
                return Scales[g] * signedCode;
            default:
                float v = 0f;
                for (int b = 0; b < Bits; b++) v += ((code >> b) & 1) == 1 ? Scales[g * Bits + b] : -Scales[g * Bits + b];
                return v;
        }
    }

    /// <summary>Decodes the whole matrix, row-major.</summary>
    public float[] DecodeAll()
    {
        var result = new float[Rows * Columns];
        for (int r = 0; r < Rows; r++)
            for (int c = 0; c < Columns; c++)
                result[r * Columns + c] = Decode(r, c);
        return result;
    }

    /// <summary>
    /// The same weights with row r multiplied by <paramref name="multipliers"/>[r], for folding a per-row factor (weight
    /// normalization's <c>g / ||Q(W)||_row</c>) into the stored form: the codes stay, the scales become per row (each
    /// group's scales times its row's multiplier); Float values are multiplied directly.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="multipliers"/> is not Rows long.</exception>
    public QuantizedWeights ScaleRows(ReadOnlySpan<float> multipliers)
    {
        if (multipliers.Length != Rows)
            throw new ArgumentException($"Expected {Rows} row multipliers, got {multipliers.Length}.", nameof(multipliers));
        if (Layout == CodeLayout.Float)
        {
            var values = new float[FloatValues!.Length];
            for (int r = 0; r < Rows; r++)
                for (int c = 0; c < Columns; c++)
                    values[r * Columns + c] = FloatValues[r * Columns + c] * multipliers[r];
            return this with { FloatValues = values };
        }
        int perGroup = ScalesPerGroup;
        var scales = new float[Rows * perGroup];
        for (int r = 0; r < Rows; r++)
            for (int b = 0; b < perGroup; b++)
                scales[r * perGroup + b] = Scales[(PerRow ? r : 0) * perGroup + b] * multipliers[r];
        return this with { PerRow = true, Scales = scales };
    }

    /// <summary>Bits needed to store this matrix: codes plus float32 scales.</summary>
    public long StorageBits => Layout == CodeLayout.Float
        ? 32L * Rows * Columns
        : (long)Bits * Rows * Columns + 32L * Groups * ScalesPerGroup;
}
