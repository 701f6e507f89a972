namespace Microsoft.ML.Quantized;

/// <summary>
/// A normalization the engine applies to a product (<c>W_x x</c>, <c>W_h h</c>) or to the LSTM cell state, in its
/// evaluation form: <see cref="PackedLayerNorm"/> or <see cref="PackedBatchNorm"/>. (Weight normalization has no
/// packed form: it is folded into the matrix's per-row scales.) Immutable.
/// </summary>
/// <remarks>
/// Serialized as a kind byte (0 none, 1 layer in one group, 2 batch, 3 layer per gate), then the kind's own fields. Kind 3
/// came with the networks' format versions that added the per-gate form (language model 2, classifier 3); older streams
/// hold only kind 1, which reads as the joint form they were trained with.
/// </remarks>
internal abstract class PackedNormalization
{
    private const byte NoneKind = 0, LayerKind = 1, BatchKind = 2, GroupedLayerKind = 3;

    /// <summary>Values per normalized vector.</summary>
    public abstract int Features { get; }

    /// <summary>Normalizes <paramref name="values"/> (<see cref="Features"/> long) of time step <paramref name="step"/> in place.</summary>
    public abstract void Apply(Span<float> values, int step, ScoringKernels kernels);

    /// <summary>Writes <paramref name="normalization"/> (null = none) with its kind byte.</summary>
    public static void Write(PackedModelWriter writer, PackedNormalization? normalization)
    {
        switch (normalization)
        {
            case null:
                writer.WriteByte(NoneKind);
                break;
            case PackedLayerNorm layer:
                writer.WriteByte(layer.Groups > 1 ? GroupedLayerKind : LayerKind);
                layer.WriteFields(writer);
                break;
            case PackedBatchNorm batch:
                writer.WriteByte(BatchKind);
                batch.WriteFields(writer);
                break;
            default:
                throw new ArgumentException($"Unknown normalization {normalization.GetType().Name}.", nameof(normalization));
        }
    }

    /// <summary>Reads a normalization written by <see cref="Write"/> for <paramref name="features"/> values; null = none.</summary>
    public static PackedNormalization? Read(PackedModelReader reader, string field, int features) => reader.ReadByte($"{field} kind") switch
    {
        NoneKind => null,
        LayerKind => PackedLayerNorm.ReadFields(reader, field, features, grouped: false),
        GroupedLayerKind => PackedLayerNorm.ReadFields(reader, field, features, grouped: true),
        BatchKind => PackedBatchNorm.ReadFields(reader, field, features),
        var kind => throw reader.Damaged($"{field} has unknown normalization kind {kind}"),
    };
}
