namespace Microsoft.ML.Quantized;

/// <summary>
/// A weight matrix on its way into an ONNX graph: the values the engine multiplies with (<see cref="PackedMatrix.Decode"/>,
/// bit for bit), and, where every row is one scale times small integers, those int8 codes and per-row scales, so that
/// <c>DequantizeLinear(codes, scales)</c> (axis 0) gives exactly the same float values. Rows can be regrouped (gate order);
/// the codes and scales follow.
/// </summary>
internal sealed class OnnxWeight
{
    private OnnxWeight(int rows, int columns, float[] values, sbyte[]? codes, float[]? scales)
    {
        Rows = rows;
        Columns = columns;
        Values = values;
        Codes = codes;
        Scales = scales;
    }

    /// <summary>Rows.</summary>
    public int Rows { get; }

    /// <summary>Columns.</summary>
    public int Columns { get; }

    /// <summary>The float values, row-major.</summary>
    public float[] Values { get; }

    /// <summary>The int8 codes, row-major, or null when the matrix is not a scale times integers per row (float weights, multi-bit binary bases).</summary>
    public sbyte[]? Codes { get; }

    /// <summary>One scale per row; null with <see cref="Codes"/>.</summary>
    public float[]? Scales { get; }

    /// <summary>The matrix's values, and its codes when each value is exactly its row's scale times an int8 code.</summary>
    public static OnnxWeight From(PackedMatrix matrix)
    {
        var values = matrix.Decode();
        bool singleScale = matrix.Layout is CodeLayout.Sign or CodeLayout.SignedInteger
            || (matrix.Layout == CodeLayout.BinaryBases && matrix.Bits == 1);
        if (!singleScale) return new(matrix.Rows, matrix.Columns, values, null, null);
        var codes = new sbyte[values.Length];
        var scales = new float[matrix.Rows];
        for (int r = 0; r < matrix.Rows; r++)
        {
            float scale = matrix.Scales[matrix.PerRow ? r : 0];
            scales[r] = scale;
            for (int c = 0; c < matrix.Columns; c++)
            {
                int i = r * matrix.Columns + c;
                float code = scale == 0f ? 0f : MathF.Round(values[i] / scale);
                // Keep codes only where dequantizing gives the engine's value bit for bit.
                if (code is < sbyte.MinValue or > sbyte.MaxValue || (float)(sbyte)code * scale != values[i])
                    return new(matrix.Rows, matrix.Columns, values, null, null);
                codes[i] = (sbyte)code;
            }
        }
        return new(matrix.Rows, matrix.Columns, values, codes, scales);
    }

    /// <summary>
    /// The rows regrouped by blocks of <paramref name="blockRows"/>: output block b is input block <paramref name="order"/>[b]
    /// (PyTorch gate order to ONNX gate order).
    /// </summary>
    public OnnxWeight ReorderBlocks(int[] order, int blockRows)
    {
        int rows = order.Length * blockRows;
        var values = new float[rows * Columns];
        var codes = Codes is null ? null : new sbyte[values.Length];
        var scales = Scales is null ? null : new float[rows];
        for (int b = 0; b < order.Length; b++)
        {
            int from = order[b] * blockRows, to = b * blockRows;
            Array.Copy(Values, from * Columns, values, to * Columns, blockRows * Columns);
            if (codes is not null) Array.Copy(Codes!, from * Columns, codes, to * Columns, blockRows * Columns);
            if (scales is not null) Array.Copy(Scales!, from, scales, to, blockRows);
        }
        return new(rows, Columns, values, codes, scales);
    }

    /// <summary>
    /// Adds the matrix to <paramref name="graph"/> and returns the name of its float value: a float initializer, or with
    /// <paramref name="quantized"/> and codes, an int8 initializer, its scales and zero points, and a per-axis
    /// <c>DequantizeLinear</c> (opset 13 and later).
    /// </summary>
    public string AddTo(OnnxGraph graph, string name, bool quantized)
    {
        if (!quantized || Codes is null) return graph.AddFloats(name, Values, Rows, Columns);
        long slices = Scales!.Length;
        var codes = graph.AddInt8($"{name}_codes", Codes, Rows, Columns);
        var scales = graph.AddFloats($"{name}_scales", Scales, slices);
        var zeros = graph.AddInt8($"{name}_zero_points", new sbyte[slices], slices);
        return graph.AddNode("DequantizeLinear", [codes, scales, zeros], [name], OnnxAttribute.Int("axis", 0));
    }
}
