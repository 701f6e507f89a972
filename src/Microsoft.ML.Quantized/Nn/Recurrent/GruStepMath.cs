using System.Numerics;
using System.Numerics.Tensors;

namespace Microsoft.ML.Quantized;

/// <summary>
/// The element-wise arithmetic of one GRU step and its derivative, on spans over contiguous row-major memory
/// (<see cref="GruSequenceFunction"/> runs it on the tensors' own buffers, between libtorch's matrix products). A gate row
/// holds the blocks r, z, n of <c>hidden</c> values each (PyTorch's order); every operation is a vectorized
/// <see cref="TensorPrimitives"/> call over one block of a row.
/// </summary>
internal static class GruStepMath
{
    /// <summary>
    /// One step from the input terms <paramref name="input"/> and recurrent terms <paramref name="recurrent"/> [rows, 3 * hidden]
    /// (each with its biases) and the previous state <paramref name="state"/> [rows, hidden]: writes
    /// <c>r = sigma((x_r + hh_r) / l_r)</c>, <c>z = sigma((x_z + hh_z) / l_z)</c>, <c>n = tanh((x_n + r hh_n) / l_n)</c> to
    /// <paramref name="gates"/> and <c>h' = n + z (h - n)</c> to <paramref name="newState"/>.
    /// </summary>
    public static void Step<T>(ReadOnlySpan<T> input, ReadOnlySpan<T> recurrent, ReadOnlySpan<T> state, Span<T> gates, Span<T> newState,
        int rows, int hidden, ReadOnlySpan<T> slopes)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int width = 3 * hidden;
        for (int row = 0; row < rows; row++)
        {
            var x = input.Slice(row * width, width);
            var hh = recurrent.Slice(row * width, width);
            var a = gates.Slice(row * width, width);
            TensorPrimitives.Add(x[..(2 * hidden)], hh[..(2 * hidden)], a[..(2 * hidden)]);
            for (int k = 0; k < 2; k++) SlopedActivations.Sigmoid(a.Slice(k * hidden, hidden), slopes[k]);
            var n = a.Slice(2 * hidden, hidden);
            TensorPrimitives.MultiplyAdd(a[..hidden], hh.Slice(2 * hidden, hidden), x.Slice(2 * hidden, hidden), n);
            SlopedActivations.Tanh(n, slopes[2]);
            var h = newState.Slice(row * hidden, hidden);
            TensorPrimitives.Subtract(state.Slice(row * hidden, hidden), n, h);
            TensorPrimitives.MultiplyAdd(a.Slice(hidden, hidden), h, n, h);
        }
    }

    /// <summary>
    /// The derivative of <see cref="Step"/>: from <paramref name="stateGradient"/> (of h') writes the gradients of the input
    /// terms to <paramref name="inputGradient"/> and of the recurrent terms to <paramref name="recurrentGradient"/> [rows,
    /// 3 * hidden], and turns <paramref name="stateGradient"/> into the direct part of the previous state's gradient
    /// (<c>dh z</c>; the part through <c>W_hh</c> is the caller's). <paramref name="scratch"/> holds 2 * hidden values.
    /// </summary>
    /// <remarks>
    /// <c>dp_n = dh (1 - z) (1 - n^2) / l_n</c> (= dx_n; dhh_n = dp_n r), <c>dp_r = dp_n hh_n r (1 - r) / l_r</c> (= dx_r = dhh_r),
    /// <c>dp_z = dh (h - n) z (1 - z) / l_z</c> (= dx_z = dhh_z).
    /// </remarks>
    public static void StepBackward<T>(Span<T> stateGradient, ReadOnlySpan<T> gates, ReadOnlySpan<T> recurrent, ReadOnlySpan<T> state,
        Span<T> inputGradient, Span<T> recurrentGradient, Span<T> scratch, int rows, int hidden, ReadOnlySpan<T> slopes)
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
            var dh = stateGradient.Slice(row * hidden, hidden);
            var dx = inputGradient.Slice(row * width, width);
            var dhh = recurrentGradient.Slice(row * width, width);
            var dpr = dx[..hidden];
            var dpz = dx.Slice(hidden, hidden);
            var dpn = dx.Slice(2 * hidden, hidden);

            ActivationDerivatives.Tanh(n, s);
            TensorPrimitives.Subtract(T.One, z, u);
            TensorPrimitives.Multiply(s, u, s);
            TensorPrimitives.Multiply(s, dh, dpn);
            if (slopes[2] != T.One) TensorPrimitives.Divide(dpn, slopes[2], dpn);

            ActivationDerivatives.Sigmoid(r, s);
            TensorPrimitives.Multiply(s, recurrent.Slice(row * width + 2 * hidden, hidden), s);
            TensorPrimitives.Multiply(s, dpn, dpr);
            if (slopes[0] != T.One) TensorPrimitives.Divide(dpr, slopes[0], dpr);

            ActivationDerivatives.Sigmoid(z, s);
            TensorPrimitives.Subtract(state.Slice(row * hidden, hidden), n, u);
            TensorPrimitives.Multiply(s, u, s);
            TensorPrimitives.Multiply(s, dh, dpz);
            if (slopes[1] != T.One) TensorPrimitives.Divide(dpz, slopes[1], dpz);

            dx[..(2 * hidden)].CopyTo(dhh);
            TensorPrimitives.Multiply(dpn, r, dhh.Slice(2 * hidden, hidden));
            TensorPrimitives.Multiply(dh, z, dh);
        }
    }
}
