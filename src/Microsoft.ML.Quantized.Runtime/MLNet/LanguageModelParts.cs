using Microsoft.ML.Runtime;

namespace Microsoft.ML.Quantized;

/// <summary>
/// A trained language model as the ML.NET transformer holds it (see <see cref="ModelParts{TPacked}"/>): the
/// <see cref="PackedLanguageModel"/> (network, options, vocabulary, history, size) and, when present, its training weights.
/// </summary>
internal sealed class LanguageModelParts : ModelParts<PackedLanguageModel>
{
    /// <summary>The training stream is the core model file, the only model stream of the first two formats.</summary>
    private static readonly StreamNames StreamsOfThisKind = new("LanguageModel.json", "PackedLanguageModel.bin", "QuantizedLanguageModel.bin");

    /// <summary>The parts of a packed model (the training package packs it), which they then own with <paramref name="training"/>.</summary>
    public LanguageModelParts(PackedLanguageModel packed, ITrainingWeights? training)
        : base(packed, training)
    {
    }

    private protected override StreamNames Names => StreamsOfThisKind;

    /// <summary>The network's options (not a copy: do not change them).</summary>
    public LanguageModelOptions Options => Packed.Configuration;

    /// <summary>The tokens: the known keys' names, <c>&lt;unk&gt;</c> when there is one, and <c>&lt;eos&gt;</c>.</summary>
    public Vocabulary Vocabulary => Packed.Vocabulary;

    /// <summary>
    /// Reads what <see cref="ModelParts{TPacked}.Save"/> wrote, or, for the first two formats (<paramref name="trainingStreamOnly"/>), packs
    /// their training model through the training package.
    /// </summary>
    /// <exception cref="ModelFormatException">A stream is missing or damaged, or an old format without the training package.</exception>
    public static LanguageModelParts Load(ModelLoadContext ctx, bool trainingStreamOnly) =>
        Load(ctx, StreamsOfThisKind, trainingStreamOnly, PackedLanguageModel.Read,
            bytes => TrainingPackage.Pack<LanguageModelParts>("LanguageModelFromTrainingFile", bytes, "language model"),
            (p, t) => new LanguageModelParts(p, t));
}
