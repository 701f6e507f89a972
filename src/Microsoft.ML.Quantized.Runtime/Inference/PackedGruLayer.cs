namespace Microsoft.ML.Quantized;

/// <summary>
/// A GRU layer in evaluation form (<c>QuantizedGruCell</c>; PyTorch convention, gate order r, z, n):
/// <code>
/// x~ = norm(W_ih x) + b_ih        h~ = norm(W_hh h) + b_hh
/// r = Q0(s((x~_r + h~_r) / l_r))   z = Q1(s((x~_z + h~_z) / l_z))   n = Q2(tanh((x~_n + r * h~_n) / l_n))
/// h' = Q3(n + z * (h - n))
/// </code>
/// Slopes in the order l_r, l_z, l_n (the options' InputGate, ForgetGate, Candidate); activation quantizers Q0..Q3 in
/// the order reset gate, update gate, new gate, hidden.
/// </summary>
/// <remarks>No own fields beyond the shared ones.</remarks>
internal sealed class PackedGruLayer : PackedRecurrentLayer
{
    /// <summary>Gate blocks: r, z, n.</summary>
    public const int GateCount = 3;

    /// <summary>Nonlinearities: r, z, n.</summary>
    public const int SlopeCount = 3;

    /// <summary>Quantized activations: the three gates and the hidden state.</summary>
    public const int ActivationCount = 4;

    /// <summary>Creates the layer.</summary>
    public PackedGruLayer(PackedProjection input, PackedProjection hidden, ReadOnlySpan<float> slopes, IReadOnlyList<PackedActivationQuantizer> activations)
        : base(GateCount, input, hidden, slopes, activations, SlopeCount, ActivationCount)
    {
    }

    /// <inheritdoc />
    public override RecurrentCellKind Cell => RecurrentCellKind.Gru;

    /// <inheritdoc />
    public override void Step(ReadOnlySpan<float> input, int layer, RecurrentStackState state)
    {
        var kernels = state.Kernels;
        int n = HiddenSize, t = state.Position;
        var h = state.Hidden(layer);
        var x = state.InputGates;
        var hh = state.HiddenGates;
        Input.Apply(input, t, x, kernels);
        Hidden.Apply(h, t, hh, kernels);
        var r = x[..n];
        var z = x.Slice(n, n);
        var candidate = x.Slice(2 * n, n);
        var hn = hh.Slice(2 * n, n);
        kernels.Add(r, hh[..n]);
        SigmoidGate(r, 0, 0, kernels);
        kernels.Add(z, hh.Slice(n, n));
        SigmoidGate(z, 1, 1, kernels);
        for (int j = 0; j < n; j++) candidate[j] += r[j] * hn[j];
        TanhGate(candidate, 2, 2, kernels);
        for (int j = 0; j < n; j++) h[j] = candidate[j] + z[j] * (h[j] - candidate[j]);
        Quantize(h, 3);
    }
}
