namespace Microsoft.ML.Quantized;

/// <summary>
/// Layer normalization in evaluation form (the same in training: statistics are per vector):
/// <c>(x - mean) / sqrt(var + epsilon) * gain + bias</c> over the vector's features, biased variance.
/// </summary>
/// <remarks>Fields: int32 features, float32 epsilon, gain and bias (float arrays of <c>features</c> values).</remarks>
internal sealed class PackedLayerNorm : PackedNormalization
{
    private readonly float[] _gain;
    private readonly float[] _bias;

    /// <summary>Creates the normalization (the arrays are copied).</summary>
    public PackedLayerNorm(ReadOnlySpan<float> gain, ReadOnlySpan<float> bias, float epsilon)
    {
        if (gain.IsEmpty || gain.Length != bias.Length)
            throw new ArgumentException($"Layer normalization needs gain and bias of one nonzero length; got {gain.Length} and {bias.Length}.", nameof(bias));
        if (!(epsilon >= 0)) throw new ArgumentOutOfRangeException(nameof(epsilon), epsilon, "Epsilon must be >= 0.");
        _gain = gain.ToArray();
        _bias = bias.ToArray();
        Epsilon = epsilon;
    }

    /// <inheritdoc />
    public override int Features => _gain.Length;

    /// <summary>The gain, one per feature.</summary>
    public ReadOnlySpan<float> Gain => _gain;

    /// <summary>The bias, one per feature.</summary>
    public ReadOnlySpan<float> Bias => _bias;

    /// <summary>Added to the variance before the square root.</summary>
    public float Epsilon { get; }

    /// <inheritdoc />
    public override void Apply(Span<float> values, int step, ScoringKernels kernels) => kernels.LayerNorm(values, _gain, _bias, Epsilon);

    internal void WriteFields(PackedModelWriter writer)
    {
        writer.WriteInt32(Features);
        writer.WriteSingle(Epsilon);
        writer.WriteSingles(_gain);
        writer.WriteSingles(_bias);
    }

    internal static PackedLayerNorm ReadFields(PackedModelReader reader, string field, int features)
    {
        reader.ReadInt32($"{field} features", features, features);
        float epsilon = reader.ReadSingle($"{field} epsilon");
        return new PackedLayerNorm(reader.ReadSingles($"{field} gain", features), reader.ReadSingles($"{field} bias", features), epsilon);
    }
}
