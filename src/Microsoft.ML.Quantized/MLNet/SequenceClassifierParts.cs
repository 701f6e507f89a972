using System.Text.Json;
using Microsoft.ML.Runtime;

namespace Microsoft.ML.Quantized;

/// <summary>
/// A trained sequence classifier as the ML.NET model parameters hold it (see <see cref="ModelParts{TPacked, TTrainable}"/>),
/// with its options.
/// </summary>
internal sealed class SequenceClassifierParts : ModelParts<PackedSequenceClassifier, QuantizedSequenceClassifier>
{
    /// <summary>The training stream is the core model file, the only model stream of the first two formats.</summary>
    private static readonly StreamNames Names = new("SequenceClassifier.json", "PackedSequenceClassifier.bin", "QuantizedSequenceClassifier.bin");

    private SequenceClassifierParts(PackedSequenceClassifier packed, Description description, QuantizedSequenceClassifier? trainable)
        : base(packed, description.History, description.Size.ToReport(), trainable)
    {
        Options = description.Options;
        if (packed.ClassCount != Options.ClassCount || packed.Recurrent.HiddenSize != Options.Recurrent.HiddenSize)
            throw new ModelFormatException($"The packed classifier ({packed.ClassCount} classes, hidden {packed.Recurrent.HiddenSize}) does not match its description ({Options.ClassCount} classes, hidden {Options.Recurrent.HiddenSize}).");
    }

    /// <summary>The parts of a freshly trained (or fine-tuned, or re-quantized) classifier, which they then own.</summary>
    public static SequenceClassifierParts From(QuantizedSequenceClassifier classifier) =>
        new(PackedModelEncoder.Encode(classifier.Network), Description.Of(classifier), classifier);

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
        Save(ctx, Names, JsonSerializer.Serialize(description, ModelFile.HeaderJson), (p, w) => p.Write(w), (t, s) => t.Save(s), withTrainingWeights);
    }

    /// <summary>Reads what <see cref="Save"/> wrote, or packs the torch model of the first two formats (<paramref name="trainingStreamOnly"/>).</summary>
    /// <exception cref="ModelFormatException">A stream is missing or damaged.</exception>
    public static SequenceClassifierParts Load(ModelLoadContext ctx, bool trainingStreamOnly) =>
        Load<SequenceClassifierParts, Description>(ctx, Names, trainingStreamOnly, "sequence-classifier description",
            PackedSequenceClassifier.Read, s => QuantizedSequenceClassifier.Load(s), From, (p, d, t) => new SequenceClassifierParts(p, d, t));

    /// <summary>What describes the packed classifier, stored as JSON beside it.</summary>
    private sealed record Description(SequenceClassifierOptions Options, EpochSummary[] History, SizeData Size)
    {
        public static Description Of(QuantizedSequenceClassifier classifier) =>
            new(classifier.Options, classifier.History.ToArray(), SizeData.Of(classifier.SizeReport()));
    }
}
