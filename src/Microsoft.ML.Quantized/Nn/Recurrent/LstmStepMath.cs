using System.Numerics;
using System.Numerics.Tensors;

namespace Microsoft.ML.Quantized;

/// <summary>
/// The element-wise arithmetic of one LSTM step and its derivative, on spans over contiguous row-major memory
/// (<see cref="LstmSequenceFunction"/> runs it on the tensors' own buffers, between libtorch's matrix products): the gate
/// activations and the cell update, in the parts between which the activation quantizers act (the gates, c', h'). Every
/// operation is a vectorized <see cref="TensorPrimitives"/> call over one gate block of a row.
/// </summary>
/// <remarks>
/// Rows are the batch; a gate row holds the blocks i, f, g, o of <c>hidden</c> values each (PyTorch's order). In place
/// means the destination is the same span as a source, which <see cref="TensorPrimitives"/> allows.
/// </remarks>
internal static class LstmStepMath
{
    /// <summary>
    /// The gate activations, in place: each row of <paramref name="gates"/> [rows, 4 * hidden] holds the pre-activations
    /// z_i, z_f, z_g, z_o and becomes <c>sigma(z_i / l_i)</c>, <c>sigma(z_f / l_f)</c>, <c>tanh(z_g / l_g)</c>,
    /// <c>sigma(z_o / l_o)</c> with the slopes <paramref name="slopes"/> (a slope of 1 divides nothing).
    /// </summary>
    public static void Activate<T>(Span<T> gates, int rows, int hidden, ReadOnlySpan<T> slopes)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int r = 0; r < rows; r++)
        {
            for (int k = 0; k < 4; k++)
            {
                var block = gates.Slice((4 * r + k) * hidden, hidden);
                if (k == 2) SlopedActivations.Tanh(block, slopes[k]);
                else SlopedActivations.Sigmoid(block, slopes[k]);
            }
        }
    }

    /// <summary>
    /// The new cell state from the gates <paramref name="gates"/> [rows, 4 * hidden] (their activations, or what the
    /// activation quantizers made of them): <c>c' = f c + i g</c> [rows, hidden].
    /// </summary>
    public static void NewCell<T>(ReadOnlySpan<T> gates, ReadOnlySpan<T> cell, Span<T> newCell, int rows, int hidden)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int r = 0; r < rows; r++)
        {
            var (i, f, g, _) = new GateRow<T>(gates, r, hidden);
            var c = newCell.Slice(r * hidden, hidden);
            TensorPrimitives.Multiply(f, cell.Slice(r * hidden, hidden), c);
            TensorPrimitives.MultiplyAdd(i, g, c, c);
        }
    }

    /// <summary>
    /// The emitted state from the gates and the new cell state <paramref name="newCell"/>: <c>tanh(c' / l_c)</c> to
    /// <paramref name="cellTanh"/> and <c>h' = o tanh(c' / l_c)</c> to <paramref name="newHidden"/>, each [rows, hidden].
    /// </summary>
    public static void EmitHidden<T>(ReadOnlySpan<T> gates, ReadOnlySpan<T> newCell, Span<T> cellTanh, Span<T> newHidden, int rows, int hidden, T cellSlope)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int r = 0; r < rows; r++)
        {
            var (_, _, _, o) = new GateRow<T>(gates, r, hidden);
            var tc = cellTanh.Slice(r * hidden, hidden);
            newCell.Slice(r * hidden, hidden).CopyTo(tc);
            SlopedActivations.Tanh(tc, cellSlope);
            TensorPrimitives.Multiply(o, tc, newHidden.Slice(r * hidden, hidden));
        }
    }

    /// <summary>
    /// The derivative of one step (<see cref="Activate"/>, <see cref="NewCell"/>, <see cref="EmitHidden"/>): from
    /// <paramref name="hiddenGradient"/> (of h', before its activation quantizer) and <paramref name="cellGradient"/> (of c',
    /// from the later steps) writes the gradient of the pre-activations to <paramref name="gateGradient"/> [rows, 4 * hidden]
    /// and turns <paramref name="cellGradient"/> into the gradient of the previous cell state c. <paramref name="gates"/> are
    /// the activations (their derivatives), <paramref name="quantizedGates"/> what the step multiplied (the same span without
    /// gate quantizers); <paramref name="gateFactors"/> and <paramref name="cellFactors"/> the straight-through factors of the
    /// gates' and the cell state's quantizers (empty without). <paramref name="scratch"/> holds <paramref name="hidden"/> values.
    /// With learned quantizer steps, <paramref name="gateStepFactors"/> and <paramref name="cellStepFactors"/> hold each
    /// quantized value's d q / d s, and the step's gradient, the sum of d L / d q times it, is added to
    /// <paramref name="stepSums"/> (gates i, f, g, o at 0-3, the cell state at 5); empty spans without.
    /// </summary>
    /// <remarks>
    /// With q the quantized gates and <c>dc = (dc' + dh q_o (1 - t^2) / l_c) m_c</c> (t = tanh(c' / l_c), m_c the cell
    /// factors or 1): <c>dz_i = dc q_g m_i i (1 - i) / l_i</c>, <c>dz_f = dc c m_f f (1 - f) / l_f</c>,
    /// <c>dz_g = dc q_i m_g (1 - g^2) / l_g</c>, <c>dz_o = dh t m_o o (1 - o) / l_o</c>, and the previous cell's gradient
    /// <c>dc q_f</c>.
    /// </remarks>
    public static void StepBackward<T>(ReadOnlySpan<T> hiddenGradient, Span<T> cellGradient, ReadOnlySpan<T> gates, ReadOnlySpan<T> quantizedGates,
        ReadOnlySpan<T> gateFactors, ReadOnlySpan<T> cell, ReadOnlySpan<T> cellTanh, ReadOnlySpan<T> cellFactors, Span<T> gateGradient, Span<T> scratch,
        int rows, int hidden, ReadOnlySpan<T> slopes, T cellSlope, ReadOnlySpan<T> gateStepFactors, ReadOnlySpan<T> cellStepFactors, Span<T> stepSums)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int r = 0; r < rows; r++)
        {
            var (i, f, g, o) = new GateRow<T>(gates, r, hidden);
            var (qi, qf, qg, qo) = new GateRow<T>(quantizedGates, r, hidden);
            var dh = hiddenGradient.Slice(r * hidden, hidden);
            var dc = cellGradient.Slice(r * hidden, hidden);
            var tc = cellTanh.Slice(r * hidden, hidden);
            var s = scratch[..hidden];
            var dzi = gateGradient.Slice(4 * r * hidden, hidden);
            var dzf = gateGradient.Slice((4 * r + 1) * hidden, hidden);
            var dzg = gateGradient.Slice((4 * r + 2) * hidden, hidden);
            var dzo = gateGradient.Slice((4 * r + 3) * hidden, hidden);

            ActivationDerivatives.Tanh(tc, s);
            TensorPrimitives.Multiply(s, qo, s);
            if (cellSlope != T.One) TensorPrimitives.Divide(s, cellSlope, s);
            TensorPrimitives.MultiplyAdd(dh, s, dc, dc);
            if (!cellStepFactors.IsEmpty) stepSums[5] += TensorPrimitives.Dot(dc, cellStepFactors.Slice(r * hidden, hidden));
            if (!cellFactors.IsEmpty) TensorPrimitives.Multiply(dc, cellFactors.Slice(r * hidden, hidden), dc);
            if (!gateStepFactors.IsEmpty)
            {
                // d L / d q of each gate: dc q_g, dc c, dc q_i, dh t.
                var sf = gateStepFactors.Slice(4 * r * hidden, 4 * hidden);
                TensorPrimitives.Multiply(dc, qg, s);
                stepSums[0] += TensorPrimitives.Dot(s, sf[..hidden]);
                TensorPrimitives.Multiply(dc, cell.Slice(r * hidden, hidden), s);
                stepSums[1] += TensorPrimitives.Dot(s, sf.Slice(hidden, hidden));
                TensorPrimitives.Multiply(dc, qi, s);
                stepSums[2] += TensorPrimitives.Dot(s, sf.Slice(2 * hidden, hidden));
                TensorPrimitives.Multiply(dh, tc, s);
                stepSums[3] += TensorPrimitives.Dot(s, sf.Slice(3 * hidden, hidden));
            }

            ActivationDerivatives.Sigmoid(o, s);
            TensorPrimitives.Multiply(s, tc, s);
            TensorPrimitives.Multiply(s, dh, dzo);
            ActivationDerivatives.Sigmoid(i, s);
            TensorPrimitives.Multiply(s, qg, s);
            TensorPrimitives.Multiply(s, dc, dzi);
            ActivationDerivatives.Sigmoid(f, s);
            TensorPrimitives.Multiply(s, cell.Slice(r * hidden, hidden), s);
            TensorPrimitives.Multiply(s, dc, dzf);
            ActivationDerivatives.Tanh(g, s);
            TensorPrimitives.Multiply(s, qi, s);
            TensorPrimitives.Multiply(s, dc, dzg);
            var dz = gateGradient.Slice(4 * r * hidden, 4 * hidden);
            if (!gateFactors.IsEmpty) TensorPrimitives.Multiply(dz, gateFactors.Slice(4 * r * hidden, 4 * hidden), dz);
            for (int k = 0; k < 4; k++)
                if (slopes[k] != T.One) TensorPrimitives.Divide(dz.Slice(k * hidden, hidden), slopes[k], dz.Slice(k * hidden, hidden));

            TensorPrimitives.Multiply(dc, qf, dc);
        }
    }

    /// <summary>The blocks i, f, g, o of one row of a [rows, 4 * hidden] gate buffer.</summary>
    private readonly ref struct GateRow<T>
    {
        private readonly ReadOnlySpan<T> row;
        private readonly int hidden;

        public GateRow(ReadOnlySpan<T> gates, int index, int hidden)
        {
            row = gates.Slice(4 * index * hidden, 4 * hidden);
            this.hidden = hidden;
        }

        public void Deconstruct(out ReadOnlySpan<T> i, out ReadOnlySpan<T> f, out ReadOnlySpan<T> g, out ReadOnlySpan<T> o)
        {
            i = row[..hidden];
            f = row.Slice(hidden, hidden);
            g = row.Slice(2 * hidden, hidden);
            o = row.Slice(3 * hidden, hidden);
        }
    }
}
