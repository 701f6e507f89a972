namespace Microsoft.ML.Quantized;

/// <summary>
/// Recurrent batch normalization in evaluation form (Cooijmans et al. 2017): per set of running statistics, the affine
/// map <c>x * scale + shift</c> with <c>scale = gain / sqrt(running_var + epsilon)</c> and
/// <c>shift = bias - running_mean * scale</c> (folded the way libtorch's evaluation kernel folds them). One set when the
/// statistics are shared across time; else set t serves step t, and steps past the last set reuse the last one (as
/// <c>RecurrentBatchNorm</c> does).
/// </summary>
/// <remarks>Fields: int32 sets, int32 features, scale and shift (float arrays of <c>sets * features</c> values, set-major).</remarks>
internal sealed class PackedBatchNorm : PackedNormalization
{
    /// <summary>Most sets of statistics accepted from a stream.</summary>
    private const int MaxSets = 1 << 20;

    private readonly float[] _scale;
    private readonly float[] _shift;

    /// <summary>Creates the normalization from folded per-set scales and shifts, set-major (the arrays are copied).</summary>
    public PackedBatchNorm(int sets, int features, ReadOnlySpan<float> scale, ReadOnlySpan<float> shift)
    {
        if (sets < 1 || features < 1)
            throw new ArgumentOutOfRangeException(nameof(sets), $"Batch normalization needs at least one set and one feature; got {sets} x {features}.");
        if (scale.Length != (long)sets * features || shift.Length != scale.Length)
            throw new ArgumentException($"Expected {sets} x {features} scales and shifts; got {scale.Length} and {shift.Length}.", nameof(scale));
        Sets = sets;
        Features = features;
        _scale = scale.ToArray();
        _shift = shift.ToArray();
    }

    /// <summary>
    /// Folds evaluation-mode batch normalization, <c>(x - mean) / sqrt(var + epsilon) * gain + bias</c>, into per-set scales
    /// and shifts (float32 arithmetic, as libtorch). <paramref name="mean"/> and <paramref name="variance"/> are
    /// [sets, features] set-major; <paramref name="gain"/> and <paramref name="bias"/> [features].
    /// </summary>
    public static PackedBatchNorm Fold(ReadOnlySpan<float> gain, ReadOnlySpan<float> bias, ReadOnlySpan<float> mean, ReadOnlySpan<float> variance, float epsilon)
    {
        int features = gain.Length;
        if (features == 0 || bias.Length != features || mean.Length % features != 0 || variance.Length != mean.Length)
            throw new ArgumentException(
                $"Batch normalization needs gain and bias of one length and statistics of sets x that length; got {gain.Length}, {bias.Length}, {mean.Length}, {variance.Length}.",
                nameof(mean));
        var scale = new float[mean.Length];
        var shift = new float[mean.Length];
        for (int i = 0; i < mean.Length; i++)
        {
            int f = i % features;
            float inverseStd = 1f / MathF.Sqrt(variance[i] + epsilon);
            scale[i] = inverseStd * gain[f];
            shift[i] = bias[f] - mean[i] * scale[i];
        }
        return new PackedBatchNorm(mean.Length / features, features, scale, shift);
    }

    /// <inheritdoc />
    public override int Features { get; }

    /// <summary>Sets of statistics: 1 when shared across time steps, else one per step.</summary>
    public int Sets { get; }

    /// <summary>The folded scales, set-major (set s, feature f at <c>s * Features + f</c>).</summary>
    public ReadOnlySpan<float> Scale => _scale;

    /// <summary>The folded shifts, laid out as <see cref="Scale"/>.</summary>
    public ReadOnlySpan<float> Shift => _shift;

    /// <inheritdoc />
    public override void Apply(Span<float> values, int step, ScoringKernels kernels)
    {
        int set = Math.Clamp(step, 0, Sets - 1);
        kernels.MultiplyAdd(values, _scale.AsSpan(set * Features, Features), _shift.AsSpan(set * Features, Features));
    }

    internal void WriteFields(PackedModelWriter writer)
    {
        writer.WriteInt32(Sets);
        writer.WriteInt32(Features);
        writer.WriteSingles(_scale);
        writer.WriteSingles(_shift);
    }

    internal static PackedBatchNorm ReadFields(PackedModelReader reader, string field, int features)
    {
        int sets = reader.ReadInt32($"{field} sets", 1, MaxSets);
        reader.ReadInt32($"{field} features", features, features);
        long count = (long)sets * features;
        if (count > Array.MaxLength) throw reader.Damaged($"{field} holds {sets} x {features} statistics, too many");
        return new PackedBatchNorm(sets, features, reader.ReadSingles($"{field} scale", (int)count), reader.ReadSingles($"{field} shift", (int)count));
    }
}
