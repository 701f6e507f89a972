namespace Microsoft.ML.Quantized;

/// <summary>
/// The numeric kernels of the managed scoring engine: the packed matrix-vector product, the gate nonlinearities, the
/// normalizations and the output softmax. Two implementations exist side by side (after Larq's compute engine): the scalar
/// <see cref="Reference"/>, written for clarity, and <see cref="Simd"/>, the one scoring runs by default. They agree to
/// float rounding (the SIMD transcendental functions are not bit-identical to <see cref="MathF"/>). Stateless and
/// thread-safe.
/// </summary>
internal abstract class ScoringKernels
{
    /// <summary>Scalar reference kernels.</summary>
    public static ScoringKernels Reference { get; } = new ReferenceKernels();

    /// <summary>Vectorized kernels (<see cref="System.Numerics.Tensors.TensorPrimitives"/> and the packed SIMD mat-vec).</summary>
    public static ScoringKernels Simd { get; } = new SimdKernels();

    /// <summary><c>y = W x</c> from the packed matrix.</summary>
    public abstract void MultiplyVector(PackedMatrix matrix, ReadOnlySpan<float> x, Span<float> y);

    /// <summary><c>values += addend</c>, element by element.</summary>
    public abstract void Add(Span<float> values, ReadOnlySpan<float> addend);

    /// <summary><c>values = values * scale + shift</c>, element by element.</summary>
    public abstract void MultiplyAdd(Span<float> values, ReadOnlySpan<float> scale, ReadOnlySpan<float> shift);

    /// <summary>HitNet's sloped sigmoid in place: <c>sigma(x / slope)</c> (no division when the slope is 1).</summary>
    public abstract void Sigmoid(Span<float> values, float slope);

    /// <summary>HitNet's sloped tanh in place: <c>tanh(x / slope)</c> (no division when the slope is 1).</summary>
    public abstract void Tanh(Span<float> values, float slope);

    /// <summary>
    /// Layer normalization in place (Ba et al. 2016, as <c>torch.nn.functional.layer_norm</c>):
    /// <c>(x - mean) / sqrt(var + epsilon) * gain + bias</c> with the biased variance over all of <paramref name="values"/>.
    /// </summary>
    public abstract void LayerNorm(Span<float> values, ReadOnlySpan<float> gain, ReadOnlySpan<float> bias, float epsilon);

    /// <summary><c>log sum exp(values)</c>, stable (the maximum subtracted first); <paramref name="scratch"/> is at least as long.</summary>
    public abstract float LogSumExp(ReadOnlySpan<float> values, Span<float> scratch);

    /// <summary>Softmax of <paramref name="values"/> into <paramref name="probabilities"/> (same length; may be the same span).</summary>
    public abstract void Softmax(ReadOnlySpan<float> values, Span<float> probabilities);
}
