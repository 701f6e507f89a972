namespace Microsoft.ML.Quantized;

/// <summary>
/// The scalar reference implementation of <see cref="ScoringKernels"/>: plain loops over <see cref="MathF"/>, sums in
/// double. The yardstick the SIMD kernels are tested against.
/// </summary>
internal sealed class ReferenceKernels : ScoringKernels
{
    /// <inheritdoc />
    public override void MultiplyVector(PackedMatrix matrix, ReadOnlySpan<float> x, Span<float> y) => matrix.MultiplyVectorScalar(x, y);

    /// <inheritdoc />
    public override void Add(Span<float> values, ReadOnlySpan<float> addend)
    {
        CheckLength(addend.Length, values.Length, nameof(addend));
        for (int i = 0; i < values.Length; i++) values[i] += addend[i];
    }

    /// <inheritdoc />
    public override void MultiplyAdd(Span<float> values, ReadOnlySpan<float> scale, ReadOnlySpan<float> shift)
    {
        CheckLength(scale.Length, values.Length, nameof(scale));
        CheckLength(shift.Length, values.Length, nameof(shift));
        for (int i = 0; i < values.Length; i++) values[i] = values[i] * scale[i] + shift[i];
    }

    /// <inheritdoc />
    public override void Sigmoid(Span<float> values, float slope)
    {
        for (int i = 0; i < values.Length; i++)
        {
            float x = slope == 1f ? values[i] : values[i] / slope;
            values[i] = 1f / (1f + MathF.Exp(-x));
        }
    }

    /// <inheritdoc />
    public override void Tanh(Span<float> values, float slope)
    {
        for (int i = 0; i < values.Length; i++) values[i] = MathF.Tanh(slope == 1f ? values[i] : values[i] / slope);
    }

    /// <inheritdoc />
    public override void LayerNorm(Span<float> values, ReadOnlySpan<float> gain, ReadOnlySpan<float> bias, float epsilon)
    {
        CheckLength(gain.Length, values.Length, nameof(gain));
        CheckLength(bias.Length, values.Length, nameof(bias));
        double sum = 0;
        foreach (float v in values) sum += v;
        float mean = (float)(sum / values.Length);
        double squares = 0;
        foreach (float v in values) squares += (double)(v - mean) * (v - mean);
        float inverseStd = 1f / MathF.Sqrt((float)(squares / values.Length) + epsilon);
        for (int i = 0; i < values.Length; i++) values[i] = (values[i] - mean) * inverseStd * gain[i] + bias[i];
    }

    /// <inheritdoc />
    public override float LogSumExp(ReadOnlySpan<float> values, Span<float> scratch)
    {
        float max = Max(values);
        double sum = 0;
        foreach (float v in values) sum += MathF.Exp(v - max);
        return max + (float)Math.Log(sum);
    }

    /// <inheritdoc />
    public override void Softmax(ReadOnlySpan<float> values, Span<float> probabilities)
    {
        CheckLength(probabilities.Length, values.Length, nameof(probabilities));
        float max = Max(values);
        double sum = 0;
        for (int i = 0; i < values.Length; i++)
        {
            probabilities[i] = MathF.Exp(values[i] - max);
            sum += probabilities[i];
        }
        float inverse = (float)(1.0 / sum);
        for (int i = 0; i < probabilities.Length; i++) probabilities[i] *= inverse;
    }

    private static float Max(ReadOnlySpan<float> values)
    {
        if (values.IsEmpty) throw new ArgumentException("The values are empty.", nameof(values));
        float max = values[0];
        foreach (float v in values) max = MathF.Max(max, v);
        return max;
    }

    private static void CheckLength(int actual, int expected, string name)
    {
        if (actual != expected) throw new ArgumentException($"{name} has length {actual}; expected {expected}.", name);
    }
}
