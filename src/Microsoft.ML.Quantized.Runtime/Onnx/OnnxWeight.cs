namespace Microsoft.ML.Quantized;

/// <summary>
/// A weight matrix on its way into an ONNX graph: the values the engine multiplies with (<see cref="PackedMatrix.Decode"/>,
/// bit for bit), and, where every row is one scale times small integers, those int8 codes and per-row scales, so that
/// <c>DequantizeLinear(codes, scales)</c> gives exactly the same float values. Rows can be reordered (gate order) and the
/// matrix transposed (a MatMul operand); the codes and scales follow.
/// </summary>
internal sealed class OnnxWeight
{
    private OnnxWeight(int rows, int columns, float[] values, sbyte[]? codes, float[]? scales, int scaleAxis)
    {
        Rows = rows;
        Columns = columns;
        Values = values;
        Codes = codes;
        Scales = scales;
        ScaleAxis = scaleAxis;
    }

    /// <summary>Rows.</summary>
    public int Rows { get; }

    /// <summary>Columns.</summary>
    public int Columns { get; }

    /// <summary>The float values, row-major.</summary>
    public float[] Values { get; }

    /// <summary>The int8 codes, row-major, or null when the matrix is not a scale times integers per row (float weights, multi-bit binary bases).</summary>
    public sbyte[]? Codes { get; }

    /// <summary>One scale per slice along <see cref="ScaleAxis"/>; null with <see cref="Codes"/>.</summary>
    public float[]? Scales { get; }

    /// <summary>The axis the scales run along: 0 (one per row), or 1 after <see cref="Transposed"/>.</summary>
    public int ScaleAxis { get; }

    /// <summary>The matrix's values, and its codes when each value is exactly its row's scale times an int8 code.</summary>
    public static OnnxWeight From(PackedMatrix matrix)
    {
        var values = matrix.Decode();
        bool singleScale = matrix.Layout is CodeLayout.Sign or CodeLayout.SignedInteger
            || (matrix.Layout == CodeLayout.BinaryBases && matrix.Bits == 1);
        if (!singleScale) return new(matrix.Rows, matrix.Columns, values, null, null, 0);
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
                    return new(matrix.Rows, matrix.Columns, values, null, null, 0);
                codes[i] = (sbyte)code;
            }
        }
        return new(matrix.Rows, matrix.Columns, values, codes, scales, 0);
    }

    /// <summary>
    /// The rows regrouped by blocks of <paramref name="blockRows"/>: output block b is input block <paramref name="order"/>[b]
    /// (PyTorch gate order to ONNX gate order).
    /// </summary>
    public OnnxWeight ReorderBlocks(int[] order, int blockRows)
    {
        if (ScaleAxis != 0) throw new InvalidOperationException("Reorder before transposing.");
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
        return new(rows, Columns, values, codes, scales, 0);
    }

    /// <summary>The transpose (a MatMul right operand); the scales then run along axis 1.</summary>
    public OnnxWeight Transposed()
    {
        var values = new float[Values.Length];
        var codes = Codes is null ? null : new sbyte[Values.Length];
        for (int r = 0; r < Rows; r++)
            for (int c = 0; c < Columns; c++)
            {
                values[c * Rows + r] = Values[r * Columns + c];
                if (codes is not null) codes[c * Rows + r] = Codes![r * Columns + c];
            }
        return new(Columns, Rows, values, codes, Scales, 1 - ScaleAxis);
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
        return graph.AddNode("DequantizeLinear", [codes, scales, zeros], [name], OnnxAttribute.Int("axis", ScaleAxis));
    }
}
