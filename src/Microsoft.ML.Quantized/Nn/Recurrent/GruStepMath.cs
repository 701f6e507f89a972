using System.Numerics;
using System.Numerics.Tensors;

namespace Microsoft.ML.Quantized;

/// <summary>
/// The element-wise arithmetic of one GRU step and its derivative, on spans over contiguous row-major memory
/// (<see cref="GruSequenceFunction"/> runs it on the tensors' own buffers, between libtorch's matrix products), in the parts
/// between which the activation quantizers act (r and z, n, h'). A gate row holds the blocks r, z, n of <c>hidden</c> values
/// each (PyTorch's order); every operation is a vectorized <see cref="TensorPrimitives"/> call over one block of a row.
/// </summary>
internal static class GruStepMath
{
    /// <summary>
    /// The reset and update gates from the input terms <paramref name="input"/> and recurrent terms <paramref name="recurrent"/>
    /// [rows, 3 * hidden] (each with its biases): writes <c>r = sigma((x_r + hh_r) / l_r)</c> and
    /// <c>z = sigma((x_z + hh_z) / l_z)</c> to the first two blocks of each row of <paramref name="gates"/>.
    /// </summary>
    public static void ResetAndUpdate<T>(ReadOnlySpan<T> input, ReadOnlySpan<T> recurrent, Span<T> gates, int rows, int hidden, ReadOnlySpan<T> slopes)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int width = 3 * hidden;
        for (int row = 0; row < rows; row++)
        {
            var a = gates.Slice(row * width, 2 * hidden);
            TensorPrimitives.Add(input.Slice(row * width, 2 * hidden), recurrent.Slice(row * width, 2 * hidden), a);
            for (int k = 0; k < 2; k++) SlopedActivations.Sigmoid(a.Slice(k * hidden, hidden), slopes[k]);
        }
    }

    /// <summary>
    /// The candidate from the reset gate in <paramref name="quantizedGates"/> (its activation, or what its quantizer made of
    /// it): writes <c>n = tanh((x_n + r hh_n) / l_n)</c> to the third block of each row of <paramref name="gates"/>.
    /// </summary>
    public static void Candidate<T>(ReadOnlySpan<T> input, ReadOnlySpan<T> recurrent, ReadOnlySpan<T> quantizedGates, Span<T> gates, int rows, int hidden, T slope)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int width = 3 * hidden;
        for (int row = 0; row < rows; row++)
        {
            var n = gates.Slice(row * width + 2 * hidden, hidden);
            TensorPrimitives.MultiplyAdd(quantizedGates.Slice(row * width, hidden), recurrent.Slice(row * width + 2 * hidden, hidden),
                input.Slice(row * width + 2 * hidden, hidden), n);
            SlopedActivations.Tanh(n, slope);
        }
    }

    /// <summary>
    /// The new state from the gates <paramref name="quantizedGates"/> (z and n as the step uses them) and the previous state
    /// <paramref name="state"/>: writes <c>h' = n + z (h - n)</c> to <paramref name="newState"/> [rows, hidden].
    /// </summary>
    public static void Mix<T>(ReadOnlySpan<T> quantizedGates, ReadOnlySpan<T> state, Span<T> newState, int rows, int hidden)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int width = 3 * hidden;
        for (int row = 0; row < rows; row++)
        {
            var n = quantizedGates.Slice(row * width + 2 * hidden, hidden);
            var h = newState.Slice(row * hidden, hidden);
            TensorPrimitives.Subtract(state.Slice(row * hidden, hidden), n, h);
            TensorPrimitives.MultiplyAdd(quantizedGates.Slice(row * width + hidden, hidden), h, n, h);
        }
    }

    /// <summary>
    /// The derivative of a step (<see cref="ResetAndUpdate"/>, <see cref="Candidate"/>, <see cref="Mix"/>): from
    /// <paramref name="stateGradient"/> (of h', before its activation quantizer) writes the gradients of the input terms to
    /// <paramref name="inputGradient"/> and of the recurrent terms to <paramref name="recurrentGradient"/> [rows, 3 * hidden],
    /// and turns <paramref name="stateGradient"/> into the direct part of the previous state's gradient (<c>dh z</c>; the part
    /// through <c>W_hh</c> is the caller's). <paramref name="gates"/> are the activations (their derivatives),
    /// <paramref name="quantizedGates"/> what the step multiplied (the same span without gate quantizers) and
    /// <paramref name="gateFactors"/> the gate quantizers' straight-through factors (empty without). <paramref name="scratch"/>
    /// holds 2 * hidden values. With learned quantizer steps, <paramref name="gateStepFactors"/> holds each quantized gate's
    /// d q / d s and the step's gradient, the sum of d L / d q times it, is added to <paramref name="stepSums"/> (r, z, n at
    /// 0-2); empty spans without.
    /// </summary>
    /// <remarks>
    /// With q the quantized gates and m their factors (1 without): <c>dp_n = dh (1 - q_z) m_n (1 - n^2) / l_n</c> (= dx_n;
    /// dhh_n = dp_n q_r), <c>dp_r = dp_n hh_n m_r r (1 - r) / l_r</c> (= dx_r = dhh_r),
    /// <c>dp_z = dh (h - q_n) m_z z (1 - z) / l_z</c> (= dx_z = dhh_z).
    /// </remarks>
    public static void StepBackward<T>(Span<T> stateGradient, ReadOnlySpan<T> gates, ReadOnlySpan<T> quantizedGates, ReadOnlySpan<T> gateFactors,
        ReadOnlySpan<T> recurrent, ReadOnlySpan<T> state, Span<T> inputGradient, Span<T> recurrentGradient, Span<T> scratch, int rows, int hidden,
        ReadOnlySpan<T> slopes, ReadOnlySpan<T> gateStepFactors, Span<T> stepSums)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int width = 3 * hidden;
        var s = scratch[..hidden];
        var u = scratch.Slice(hidden, hidden);
        for (int row = 0; row < rows; row++)
        {
            var a = gates.Slice(row * width, width);
            var r = a[..hidden];
            var z = a.Slice(hidden, hidden);
            var n = a.Slice(2 * hidden, hidden);
            var q = quantizedGates.Slice(row * width, width);
            var qr = q[..hidden];
            var qz = q.Slice(hidden, hidden);
            var qn = q.Slice(2 * hidden, hidden);
            var m = gateFactors.IsEmpty ? default : gateFactors.Slice(row * width, width);
            var dh = stateGradient.Slice(row * hidden, hidden);
            var dx = inputGradient.Slice(row * width, width);
            var dhh = recurrentGradient.Slice(row * width, width);
            var dpr = dx[..hidden];
            var dpz = dx.Slice(hidden, hidden);
            var dpn = dx.Slice(2 * hidden, hidden);

            var sf = gateStepFactors.IsEmpty ? default : gateStepFactors.Slice(row * width, width);
            ActivationDerivatives.Tanh(n, s);
            TensorPrimitives.Subtract(T.One, qz, u);
            if (!sf.IsEmpty)
            {
                // d L / d q_n = dh (1 - q_z)
                TensorPrimitives.Multiply(dh, u, u);
                stepSums[2] += TensorPrimitives.Dot<T>(u, sf.Slice(2 * hidden, hidden));
                TensorPrimitives.Subtract(T.One, qz, u);
            }
            TensorPrimitives.Multiply(s, u, s);
            TensorPrimitives.Multiply(s, dh, dpn);
            if (!m.IsEmpty) TensorPrimitives.Multiply(dpn, m.Slice(2 * hidden, hidden), dpn);
            if (slopes[2] != T.One) TensorPrimitives.Divide(dpn, slopes[2], dpn);
            if (!sf.IsEmpty)
            {
                // d L / d q_r = dp_n hh_n
                TensorPrimitives.Multiply(dpn, recurrent.Slice(row * width + 2 * hidden, hidden), u);
                stepSums[0] += TensorPrimitives.Dot<T>(u, sf[..hidden]);
            }

            ActivationDerivatives.Sigmoid(r, s);
            TensorPrimitives.Multiply(s, recurrent.Slice(row * width + 2 * hidden, hidden), s);
            TensorPrimitives.Multiply(s, dpn, dpr);
            if (!m.IsEmpty) TensorPrimitives.Multiply(dpr, m[..hidden], dpr);
            if (slopes[0] != T.One) TensorPrimitives.Divide(dpr, slopes[0], dpr);

            ActivationDerivatives.Sigmoid(z, s);
            TensorPrimitives.Subtract(state.Slice(row * hidden, hidden), qn, u);
            if (!sf.IsEmpty)
            {
                // d L / d q_z = dh (h - q_n), u holding h - q_n; s is free until the next line
                TensorPrimitives.Multiply(dh, u, s);
                stepSums[1] += TensorPrimitives.Dot<T>(s, sf.Slice(hidden, hidden));
                ActivationDerivatives.Sigmoid(z, s);
            }
            TensorPrimitives.Multiply(s, u, s);
            TensorPrimitives.Multiply(s, dh, dpz);
            if (!m.IsEmpty) TensorPrimitives.Multiply(dpz, m.Slice(hidden, hidden), dpz);
            if (slopes[1] != T.One) TensorPrimitives.Divide(dpz, slopes[1], dpz);

            dx[..(2 * hidden)].CopyTo(dhh);
            TensorPrimitives.Multiply(dpn, qr, dhh.Slice(2 * hidden, hidden));
            TensorPrimitives.Multiply(dh, qz, dh);
        }
    }
}
