namespace Microsoft.ML.Quantized;

/// <summary>
/// Layer normalization in evaluation form (the same in training: statistics are per vector): the vector is split into
/// <see cref="Groups"/> equal groups, each group becomes <c>(x - mean) / sqrt(var + epsilon)</c> over its own values
/// (biased variance), then every feature is scaled by its gain and shifted by its bias. One group is the joint form
/// (<see cref="LayerNormForm.Joint"/>), G groups the per-gate form (<see cref="LayerNormForm.PerGate"/>).
/// </summary>
/// <remarks>
/// Fields: int32 features, then (per-gate kind only, see <see cref="PackedNormalization"/>) int32 groups, float32 epsilon,
/// gain and bias (float arrays of <c>features</c> values).
/// </remarks>
internal sealed class PackedLayerNorm : PackedNormalization
{
    private readonly float[] _gain;
    private readonly float[] _bias;

    /// <summary>Creates the normalization (the arrays are copied).</summary>
    public PackedLayerNorm(ReadOnlySpan<float> gain, ReadOnlySpan<float> bias, float epsilon, int groups = 1)
    {
        if (gain.IsEmpty || gain.Length != bias.Length)
            throw new ArgumentException($"Layer normalization needs gain and bias of one nonzero length; got {gain.Length} and {bias.Length}.", nameof(bias));
        if (!(epsilon >= 0)) throw new ArgumentOutOfRangeException(nameof(epsilon), epsilon, "Epsilon must be >= 0.");
        if (groups < 1 || gain.Length % groups != 0)
            throw new ArgumentOutOfRangeException(nameof(groups), groups, $"Layer normalization groups must divide the {gain.Length} features.");
        _gain = gain.ToArray();
        _bias = bias.ToArray();
        Epsilon = epsilon;
        Groups = groups;
    }

    /// <inheritdoc />
    public override int Features => _gain.Length;

    /// <summary>Groups normalized on their own: 1 (joint) or the cell's gate count (per gate).</summary>
    public int Groups { get; }

    /// <summary>The gain, one per feature.</summary>
    public ReadOnlySpan<float> Gain => _gain;

    /// <summary>The bias, one per feature.</summary>
    public ReadOnlySpan<float> Bias => _bias;

    /// <summary>Added to the variance before the square root.</summary>
    public float Epsilon { get; }

    /// <inheritdoc />
    public override void Apply(Span<float> values, int step, ScoringKernels kernels)
    {
        int size = _gain.Length / Groups;
        for (int g = 0; g < Groups; g++)
            kernels.LayerNorm(values.Slice(g * size, size), _gain.AsSpan(g * size, size), _bias.AsSpan(g * size, size), Epsilon);
    }

    internal void WriteFields(PackedModelWriter writer)
    {
        writer.WriteInt32(Features);
        if (Groups > 1) writer.WriteInt32(Groups);
        writer.WriteSingle(Epsilon);
        writer.WriteSingles(_gain);
        writer.WriteSingles(_bias);
    }

    /// <summary>Reads the fields; <paramref name="grouped"/> for the per-gate kind, which stores the group count.</summary>
    internal static PackedLayerNorm ReadFields(PackedModelReader reader, string field, int features, bool grouped)
    {
        reader.ReadInt32($"{field} features", features, features);
        int groups = grouped ? reader.ReadInt32($"{field} groups", 2, features) : 1;
        if (features % groups != 0) throw reader.Damaged($"{field} has {groups} groups, which do not divide its {features} features");
        float epsilon = reader.ReadSingle($"{field} epsilon");
        return new PackedLayerNorm(reader.ReadSingles($"{field} gain", features), reader.ReadSingles($"{field} bias", features), epsilon, groups);
    }
}
