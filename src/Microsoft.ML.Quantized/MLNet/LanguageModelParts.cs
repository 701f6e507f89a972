using System.Text.Json;
using Microsoft.ML.Runtime;

namespace Microsoft.ML.Quantized;

/// <summary>
/// A trained language model as the ML.NET transformer holds it (see <see cref="ModelParts{TPacked, TTrainable}"/>), with
/// its options and vocabulary.
/// </summary>
internal sealed class LanguageModelParts : ModelParts<PackedLanguageModel, QuantizedLanguageModel>
{
    /// <summary>The training stream is the core model file, the only model stream of the first two formats.</summary>
    private static readonly StreamNames Names = new("LanguageModel.json", "PackedLanguageModel.bin", "QuantizedLanguageModel.bin");

    private LanguageModelParts(PackedLanguageModel packed, Description description, QuantizedLanguageModel? trainable)
        : base(packed, description.History, description.Size.ToReport(), trainable)
    {
        Options = description.Options;
        Vocabulary = Vocabulary.FromTokens(description.Tokens, description.CharacterLevel);
        if (packed.VocabularySize != Vocabulary.Count || packed.Recurrent.HiddenSize != Options.Recurrent.HiddenSize)
            throw new ModelFormatException($"The packed language model ({packed.VocabularySize} tokens, hidden {packed.Recurrent.HiddenSize}) does not match its description ({Vocabulary.Count} tokens, hidden {Options.Recurrent.HiddenSize}).");
    }

    /// <summary>The parts of a freshly trained (or fine-tuned, or re-quantized) model, which they then own.</summary>
    public static LanguageModelParts From(QuantizedLanguageModel model) =>
        new(PackedModelEncoder.Encode(model.Network), Description.Of(model), model);

    /// <summary>The network's options.</summary>
    public LanguageModelOptions Options { get; }

    /// <summary>The tokens: the known keys' names, <c>&lt;unk&gt;</c> when there is one, and <c>&lt;eos&gt;</c>.</summary>
    public Vocabulary Vocabulary { get; }

    /// <summary>Writes the parts; the training weights only when <paramref name="withTrainingWeights"/>.</summary>
    public void Save(ModelSaveContext ctx, bool withTrainingWeights)
    {
        var description = new Description(Options, Vocabulary.Tokens.ToArray(), Vocabulary.IsCharacterLevel, History.ToArray(), SizeData.Of(SizeReport));
        Save(ctx, Names, JsonSerializer.Serialize(description, ModelFile.HeaderJson), (p, w) => p.Write(w), (t, s) => t.Save(s), withTrainingWeights);
    }

    /// <summary>Reads what <see cref="Save"/> wrote, or packs the torch model of the first two formats (<paramref name="trainingStreamOnly"/>).</summary>
    /// <exception cref="ModelFormatException">A stream is missing or damaged.</exception>
    public static LanguageModelParts Load(ModelLoadContext ctx, bool trainingStreamOnly) =>
        Load<LanguageModelParts, Description>(ctx, Names, trainingStreamOnly, "language-model description",
            PackedLanguageModel.Read, s => QuantizedLanguageModel.Load(s), From, (p, d, t) => new LanguageModelParts(p, d, t));

    /// <summary>What describes the packed model, stored as JSON beside it.</summary>
    private sealed record Description(LanguageModelOptions Options, string[] Tokens, bool CharacterLevel, EpochSummary[] History, SizeData Size)
    {
        public static Description Of(QuantizedLanguageModel model) =>
            new(model.Options, model.Vocabulary.Tokens.ToArray(), model.Vocabulary.IsCharacterLevel, model.History.ToArray(), SizeData.Of(model.SizeReport()));
    }
}
