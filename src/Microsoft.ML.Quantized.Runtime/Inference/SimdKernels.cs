using System.Numerics.Tensors;

namespace Microsoft.ML.Quantized;

/// <summary>
/// The vectorized implementation of <see cref="ScoringKernels"/>: the packed matrix's SIMD mat-vec and
/// <see cref="TensorPrimitives"/> (which uses the widest vectors the hardware accelerates, Vector512 included) for the
/// elementwise work and the reductions.
/// </summary>
internal sealed class SimdKernels : ScoringKernels
{
    /// <inheritdoc />
    public override void MultiplyVector(PackedMatrix matrix, ReadOnlySpan<float> x, Span<float> y) => matrix.MultiplyVector(x, y);

    /// <inheritdoc />
    public override void Add(Span<float> values, ReadOnlySpan<float> addend) => TensorPrimitives.Add(values, addend, values);

    /// <inheritdoc />
    public override void MultiplyAdd(Span<float> values, ReadOnlySpan<float> scale, ReadOnlySpan<float> shift)
        => TensorPrimitives.MultiplyAdd(values, scale, shift, values);

    /// <inheritdoc />
    public override void Sigmoid(Span<float> values, float slope) => SlopedActivations.Sigmoid(values, slope);

    /// <inheritdoc />
    public override void Tanh(Span<float> values, float slope) => SlopedActivations.Tanh(values, slope);

    /// <inheritdoc />
    public override void LayerNorm(Span<float> values, ReadOnlySpan<float> gain, ReadOnlySpan<float> bias, float epsilon)
    {
        float mean = TensorPrimitives.Sum(values) / values.Length;
        TensorPrimitives.Subtract(values, mean, values);
        float inverseStd = 1f / MathF.Sqrt(TensorPrimitives.SumOfSquares(values) / values.Length + epsilon);
        TensorPrimitives.Multiply(values, inverseStd, values);
        TensorPrimitives.MultiplyAdd(values, gain, bias, values);
    }

    /// <inheritdoc />
    public override float LogSumExp(ReadOnlySpan<float> values, Span<float> scratch)
    {
        float max = TensorPrimitives.Max(values);
        var shifted = scratch[..values.Length];
        TensorPrimitives.Subtract(values, max, shifted);
        TensorPrimitives.Exp(shifted, shifted);
        return max + MathF.Log(TensorPrimitives.Sum(shifted));
    }

    /// <inheritdoc />
    public override void Softmax(ReadOnlySpan<float> values, Span<float> probabilities)
    {
        float max = TensorPrimitives.Max(values);
        TensorPrimitives.Subtract(values, max, probabilities);
        TensorPrimitives.Exp(probabilities, probabilities);
        TensorPrimitives.Divide(probabilities, TensorPrimitives.Sum(probabilities), probabilities);
    }
}
