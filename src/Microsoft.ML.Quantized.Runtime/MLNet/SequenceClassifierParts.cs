using System.Text.Json;
using Microsoft.ML.Runtime;

namespace Microsoft.ML.Quantized;

/// <summary>
/// A trained sequence classifier as the ML.NET model parameters hold it (see <see cref="ModelParts{TPacked}"/>),
/// with its options.
/// </summary>
internal sealed class SequenceClassifierParts : ModelParts<PackedSequenceClassifier>
{
    /// <summary>The training stream is the core model file, the only model stream of the first two formats.</summary>
    private static readonly StreamNames Names = new("SequenceClassifier.json", "PackedSequenceClassifier.bin", "QuantizedSequenceClassifier.bin");

    /// <summary>The parts of a trained classifier (the training package packs it), which they then own.</summary>
    public SequenceClassifierParts(PackedSequenceClassifier packed, SequenceClassifierOptions options, IReadOnlyList<EpochSummary> history,
        ModelSizeReport sizeReport, ITrainingWeights? training)
        : base(packed, history, sizeReport, training)
    {
        Options = options;
        if (packed.ClassCount != Options.ClassCount || packed.Recurrent.HiddenSize != Options.Recurrent.HiddenSize)
            throw new ModelFormatException($"The packed classifier ({packed.ClassCount} classes, hidden {packed.Recurrent.HiddenSize}) does not match its description ({Options.ClassCount} classes, hidden {Options.Recurrent.HiddenSize}).");
    }

    /// <summary>The classifier's options (token classifiers: with the vocabulary size used).</summary>
    public SequenceClassifierOptions Options { get; }

    /// <summary>Token ids or float frames.</summary>
    public SequenceClassifierInputKind InputKind => Packed.InputKind;

    /// <summary>Number of classes.</summary>
    public int ClassCount => Packed.ClassCount;

    /// <summary>Writes the parts; the training weights only when <paramref name="withTrainingWeights"/>.</summary>
    public void Save(ModelSaveContext ctx, bool withTrainingWeights)
    {
        var description = new Description(Options, History.ToArray(), SizeData.Of(SizeReport));
        Save(ctx, Names, JsonSerializer.Serialize(description, ModelFile.HeaderJson), (p, w) => p.Write(w), withTrainingWeights);
    }

    /// <summary>
    /// Reads what <see cref="Save"/> wrote, or, for the first two formats (<paramref name="trainingStreamOnly"/>), packs
    /// their training classifier through the training package.
    /// </summary>
    /// <exception cref="ModelFormatException">A stream is missing or damaged, or an old format without the training package.</exception>
    public static SequenceClassifierParts Load(ModelLoadContext ctx, bool trainingStreamOnly) =>
        Load<SequenceClassifierParts, Description>(ctx, Names, trainingStreamOnly, "sequence-classifier description", PackedSequenceClassifier.Read,
            bytes => TrainingPackage.Pack<SequenceClassifierParts>("SequenceClassifierFromTrainingFile", bytes, "sequence classifier"),
            (p, d, t) => new SequenceClassifierParts(p, d.Options, d.History, d.Size.ToReport(), t));

    /// <summary>What describes the packed classifier, stored as JSON beside it.</summary>
    private sealed record Description(SequenceClassifierOptions Options, EpochSummary[] History, SizeData Size);
}
