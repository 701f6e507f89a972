using System.Numerics;
using System.Numerics.Tensors;

namespace Microsoft.ML.Quantized;

/// <summary>The derivatives of the gate activations from their outputs, on spans (the sequence functions' backward passes).</summary>
internal static class ActivationDerivatives
{
    /// <summary><c>a (1 - a)</c>: the sigmoid's derivative at the point whose output is <paramref name="activation"/>.</summary>
    public static void Sigmoid<T>(ReadOnlySpan<T> activation, Span<T> destination)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        TensorPrimitives.Subtract(T.One, activation, destination);
        TensorPrimitives.Multiply(destination, activation, destination);
    }

    /// <summary><c>1 - a^2</c>: tanh's derivative at the point whose output is <paramref name="activation"/>.</summary>
    public static void Tanh<T>(ReadOnlySpan<T> activation, Span<T> destination)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        TensorPrimitives.Multiply(activation, activation, destination);
        TensorPrimitives.Subtract(T.One, destination, destination);
    }
}
