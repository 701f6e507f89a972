using Microsoft.ML.Runtime;

namespace Microsoft.ML.Quantized;

/// <summary>
/// A trained sequence classifier as the ML.NET model parameters hold it (see <see cref="ModelParts{TPacked}"/>): the
/// <see cref="PackedSequenceClassifier"/> (network, options, history, size) and, when present, its training weights.
/// </summary>
internal sealed class SequenceClassifierParts : ModelParts<PackedSequenceClassifier>
{
    /// <summary>The training stream is the core model file, the only model stream of the first two formats.</summary>
    private static readonly StreamNames StreamsOfThisKind = new("SequenceClassifier.json", "PackedSequenceClassifier.bin", "QuantizedSequenceClassifier.bin");

    /// <summary>The parts of a packed classifier (the training package packs it), which they then own with <paramref name="training"/>.</summary>
    public SequenceClassifierParts(PackedSequenceClassifier packed, ITrainingWeights? training)
        : base(packed, training)
    {
    }

    private protected override StreamNames Names => StreamsOfThisKind;

    /// <summary>The classifier's options (token classifiers: with the vocabulary size used; not a copy: do not change them).</summary>
    public SequenceClassifierOptions Options => Packed.Configuration;

    /// <summary>Token ids or float frames.</summary>
    public SequenceClassifierInputKind InputKind => Packed.InputKind;

    /// <summary>Number of classes.</summary>
    public int ClassCount => Packed.ClassCount;

    /// <summary>
    /// Reads what <see cref="ModelParts{TPacked}.Save"/> wrote, or, for the first two formats (<paramref name="trainingStreamOnly"/>), packs
    /// their training classifier through the training package.
    /// </summary>
    /// <exception cref="ModelFormatException">A stream is missing or damaged, or an old format without the training package.</exception>
    public static SequenceClassifierParts Load(ModelLoadContext ctx, bool trainingStreamOnly) =>
        Load(ctx, StreamsOfThisKind, trainingStreamOnly, PackedSequenceClassifier.Read,
            bytes => TrainingPackage.Pack<SequenceClassifierParts>("SequenceClassifierFromTrainingFile", bytes, "sequence classifier"),
            (p, t) => new SequenceClassifierParts(p, t));
}
