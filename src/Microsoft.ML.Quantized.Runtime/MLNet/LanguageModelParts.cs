using System.Text.Json;
using Microsoft.ML.Runtime;

namespace Microsoft.ML.Quantized;

/// <summary>
/// A trained language model as the ML.NET transformer holds it (see <see cref="ModelParts{TPacked}"/>), with
/// its options and vocabulary.
/// </summary>
internal sealed class LanguageModelParts : ModelParts<PackedLanguageModel>
{
    /// <summary>The training stream is the core model file, the only model stream of the first two formats.</summary>
    private static readonly StreamNames Names = new("LanguageModel.json", "PackedLanguageModel.bin", "QuantizedLanguageModel.bin");

    /// <summary>The parts of a trained model (the training package packs it), which they then own.</summary>
    public LanguageModelParts(PackedLanguageModel packed, LanguageModelOptions options, Vocabulary vocabulary, IReadOnlyList<EpochSummary> history,
        ModelSizeReport sizeReport, ITrainingWeights? training)
        : base(packed, history, sizeReport, training)
    {
        Options = options;
        Vocabulary = vocabulary;
        if (packed.VocabularySize != Vocabulary.Count || packed.Recurrent.HiddenSize != Options.Recurrent.HiddenSize)
            throw new ModelFormatException($"The packed language model ({packed.VocabularySize} tokens, hidden {packed.Recurrent.HiddenSize}) does not match its description ({Vocabulary.Count} tokens, hidden {Options.Recurrent.HiddenSize}).");
    }

    /// <summary>The network's options.</summary>
    public LanguageModelOptions Options { get; }

    /// <summary>The tokens: the known keys' names, <c>&lt;unk&gt;</c> when there is one, and <c>&lt;eos&gt;</c>.</summary>
    public Vocabulary Vocabulary { get; }

    /// <summary>Writes the parts; the training weights only when <paramref name="withTrainingWeights"/>.</summary>
    public void Save(ModelSaveContext ctx, bool withTrainingWeights)
    {
        var description = new Description(Options, Vocabulary.Tokens.ToArray(), Vocabulary.IsCharacterLevel, History.ToArray(), SizeData.Of(SizeReport));
        Save(ctx, Names, JsonSerializer.Serialize(description, ModelFile.HeaderJson), (p, w) => p.Write(w), withTrainingWeights);
    }

    /// <summary>
    /// Reads what <see cref="Save"/> wrote, or, for the first two formats (<paramref name="trainingStreamOnly"/>), packs
    /// their training model through the training package.
    /// </summary>
    /// <exception cref="ModelFormatException">A stream is missing or damaged, or an old format without the training package.</exception>
    public static LanguageModelParts Load(ModelLoadContext ctx, bool trainingStreamOnly) =>
        Load<LanguageModelParts, Description>(ctx, Names, trainingStreamOnly, "language-model description", PackedLanguageModel.Read,
            bytes => TrainingPackage.Pack<LanguageModelParts>("LanguageModelFromTrainingFile", bytes, "language model"),
            (p, d, t) => new LanguageModelParts(p, d.Options, Vocabulary.FromTokens(d.Tokens, d.CharacterLevel), d.History, d.Size.ToReport(), t));

    /// <summary>What describes the packed model, stored as JSON beside it.</summary>
    private sealed record Description(LanguageModelOptions Options, string[] Tokens, bool CharacterLevel, EpochSummary[] History, SizeData Size);
}
