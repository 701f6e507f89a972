using System.Numerics;
using System.Numerics.Tensors;

namespace Microsoft.ML.Quantized;

/// <summary>
/// HitNet's slope-adjustable sigmoid and tanh, <c>sigma(x / lambda)</c> and <c>tanh(x / lambda)</c>, in place on spans
/// (a slope of 1 divides nothing): shared by the scoring engine and the training loops' managed step arithmetic.
/// </summary>
internal static class SlopedActivations
{
    /// <summary><paramref name="values"/> becomes <c>sigma(values / slope)</c>.</summary>
    public static void Sigmoid<T>(Span<T> values, T slope) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (slope != T.One) TensorPrimitives.Divide(values, slope, values);
        TensorPrimitives.Sigmoid(values, values);
    }

    /// <summary><paramref name="values"/> becomes <c>tanh(values / slope)</c>.</summary>
    public static void Tanh<T>(Span<T> values, T slope) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (slope != T.One) TensorPrimitives.Divide(values, slope, values);
        TensorPrimitives.Tanh(values, values);
    }
}
