namespace Microsoft.ML.Quantized;

/// <summary>
/// An LSTM layer in evaluation form (<c>QuantizedLstmCell</c>; gate order i, f, g, o):
/// <code>
/// a = norm(W_ih x) + b_ih + norm(W_hh h) + b_hh
/// i = Q0(s(a_i / l_i))   f = Q1(s(a_f / l_f))   g = Q2(tanh(a_g / l_g))   o = Q3(s(a_o / l_o))
/// c' = Q5(f * c + i * g)        h' = Q4(o * tanh(norm_c(c') / l_c))
/// </code>
/// Slopes in the order l_i, l_f, l_g, l_o, l_c; activation quantizers Q0..Q5 in the order input gate, forget gate,
/// candidate, output gate, hidden, cell state (the identity unless the model quantized its cell state).
/// </summary>
/// <remarks>Own fields, after the shared ones: the cell-state normalization (<see cref="PackedNormalization.Write"/>).</remarks>
internal sealed class PackedLstmLayer : PackedRecurrentLayer
{
    /// <summary>Gate blocks: i, f, g, o.</summary>
    public const int GateCount = 4;

    /// <summary>Nonlinearities: i, f, g, o and the cell output.</summary>
    public const int SlopeCount = 5;

    /// <summary>Quantized activations: the four gates, the hidden state and the cell state.</summary>
    public const int ActivationCount = 6;

    /// <summary>Quantized activations in models written before the cell state could be quantized: the four gates and the hidden state.</summary>
    public const int FloatCellStateActivationCount = 5;

    /// <summary>Creates the layer.</summary>
    public PackedLstmLayer(
        PackedProjection input, PackedProjection hidden, ReadOnlySpan<float> slopes,
        IReadOnlyList<PackedActivationQuantizer> activations, PackedNormalization? cellNormalization)
        : base(GateCount, input, hidden, slopes, activations, SlopeCount, ActivationCount)
    {
        if (cellNormalization is not null && cellNormalization.Features != HiddenSize)
            throw new ArgumentException(
                $"The cell-state normalization has {cellNormalization.Features} features; the layer has {HiddenSize} hidden units.", nameof(cellNormalization));
        CellNormalization = cellNormalization;
    }

    /// <inheritdoc />
    public override RecurrentCellKind Cell => RecurrentCellKind.Lstm;

    /// <summary>Normalization of the cell state before its tanh (layer normalization); null for none.</summary>
    public PackedNormalization? CellNormalization { get; }

    /// <inheritdoc />
    public override void Step(ReadOnlySpan<float> input, int layer, RecurrentStackState state)
    {
        var kernels = state.Kernels;
        int n = HiddenSize, t = state.Position;
        var h = state.Hidden(layer);
        var c = state.Cell(layer);
        var gates = state.InputGates;
        var recurrent = state.HiddenGates;
        Input.Apply(input, t, gates, kernels);
        Hidden.Apply(h, t, recurrent, kernels);
        kernels.Add(gates, recurrent);
        var i = gates[..n];
        var f = gates.Slice(n, n);
        var g = gates.Slice(2 * n, n);
        var o = gates.Slice(3 * n, n);
        SigmoidGate(i, 0, 0, kernels);
        SigmoidGate(f, 1, 1, kernels);
        TanhGate(g, 2, 2, kernels);
        SigmoidGate(o, 3, 3, kernels);
        for (int j = 0; j < n; j++) c[j] = f[j] * c[j] + i[j] * g[j];
        Quantize(c, 5);
        var cellOut = recurrent[..n];
        c.CopyTo(cellOut);
        CellNormalization?.Apply(cellOut, t, kernels);
        kernels.Tanh(cellOut, Slopes[4]);
        for (int j = 0; j < n; j++) h[j] = o[j] * cellOut[j];
        Quantize(h, 4);
    }

    /// <inheritdoc />
    internal override void Write(PackedModelWriter writer)
    {
        base.Write(writer);
        PackedNormalization.Write(writer, CellNormalization);
    }
}
