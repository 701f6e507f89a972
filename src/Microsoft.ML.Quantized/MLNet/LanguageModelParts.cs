using System.Text.Json;
using Microsoft.ML.Runtime;

namespace Microsoft.ML.Quantized;

/// <summary>
/// A trained language model as the ML.NET transformer holds it: the packed model it scores with (codes and scales,
/// see <see cref="PackedLanguageModel"/>), what describes it (options, vocabulary, history, size), and, after Fit or
/// when it was saved with its training weights, the torch model that KURE fine-tuning and re-quantization start from.
/// Saves itself into an ML.NET model file and loads every format the transformer has written.
/// </summary>
internal sealed class LanguageModelParts : IDisposable
{
    private const string DescriptionStreamName = "LanguageModel.json";
    private const string PackedStreamName = "PackedLanguageModel.bin";

    /// <summary>The core model file (float training weights); the only model stream of the first two formats.</summary>
    private const string TrainingStreamName = "QuantizedLanguageModel.bin";

    private LanguageModelParts(PackedLanguageModel packed, Description description, QuantizedLanguageModel? trainable)
    {
        Packed = packed;
        Options = description.Options;
        Vocabulary = Vocabulary.FromTokens(description.Tokens, description.CharacterLevel);
        History = description.History;
        SizeReport = description.Size.ToReport();
        Trainable = trainable;
        if (Packed.VocabularySize != Vocabulary.Count || Packed.Recurrent.HiddenSize != Options.Recurrent.HiddenSize)
            throw new ModelFormatException($"The packed language model ({Packed.VocabularySize} tokens, hidden {Packed.Recurrent.HiddenSize}) does not match its description ({Vocabulary.Count} tokens, hidden {Options.Recurrent.HiddenSize}).");
    }

    /// <summary>The parts of a freshly trained (or fine-tuned, or re-quantized) model, which they then own.</summary>
    public static LanguageModelParts From(QuantizedLanguageModel model) =>
        new(PackedModelEncoder.Encode(model.Network), Description.Of(model), model);

    /// <summary>The packed model every score comes from.</summary>
    public PackedLanguageModel Packed { get; }

    /// <summary>The network's options.</summary>
    public LanguageModelOptions Options { get; }

    /// <summary>The tokens: the known keys' names, <c>&lt;unk&gt;</c> when there is one, and <c>&lt;eos&gt;</c>.</summary>
    public Vocabulary Vocabulary { get; }

    /// <summary>Training history, one entry per epoch.</summary>
    public IReadOnlyList<EpochSummary> History { get; }

    /// <summary>Parameters and packed bytes, as measured when the model was trained.</summary>
    public ModelSizeReport SizeReport { get; }

    /// <summary>The torch model with its float training weights, or null when it was saved without them.</summary>
    public QuantizedLanguageModel? Trainable { get; }

    /// <summary>
    /// Writes the description and the packed model, and the training weights when <paramref name="withTrainingWeights"/>
    /// and this model has them.
    /// </summary>
    public void Save(ModelSaveContext ctx, bool withTrainingWeights)
    {
        var json = JsonSerializer.Serialize(new Description(Options, Vocabulary.Tokens.ToArray(), Vocabulary.IsCharacterLevel, History.ToArray(), SizeData.Of(SizeReport)), ModelFile.HeaderJson);
        ctx.SaveBinaryStream(DescriptionStreamName, w => w.Write(json));
        ctx.SaveBinaryStream(PackedStreamName, Packed.Write);
        if (withTrainingWeights && Trainable is not null)
            ctx.SaveBinaryStream(TrainingStreamName, w =>
            {
                w.Flush();
                Trainable.Save(w.BaseStream);
            });
    }

    /// <summary>
    /// Reads what <see cref="Save"/> wrote; for the first two formats (<paramref name="trainingStreamOnly"/>), which stored
    /// only the torch model, packs it on load.
    /// </summary>
    /// <exception cref="ModelFormatException">A stream is missing or damaged.</exception>
    public static LanguageModelParts Load(ModelLoadContext ctx, bool trainingStreamOnly)
    {
        QuantizedLanguageModel? trainable = null;
        try
        {
            ctx.TryLoadBinaryStream(TrainingStreamName, r => trainable = QuantizedLanguageModel.Load(r.BaseStream));
            if (trainingStreamOnly)
                return trainable is null ? throw Missing(TrainingStreamName) : From(trainable);
            Description? description = null;
            PackedLanguageModel? packed = null;
            if (!ctx.TryLoadBinaryStream(DescriptionStreamName, r => description = ModelFile.ReadHeader<Description>(r.ReadString(), "language-model description")))
                throw Missing(DescriptionStreamName);
            if (!ctx.TryLoadBinaryStream(PackedStreamName, r => packed = PackedLanguageModel.Read(r)))
                throw Missing(PackedStreamName);
            return new LanguageModelParts(packed!, description!, trainable);
        }
        catch
        {
            trainable?.Dispose();
            throw;
        }
    }

    private static ModelFormatException Missing(string stream) =>
        new($"the '{stream}' stream is missing: the file is damaged or was not written by Microsoft.ML.Quantized");

    /// <summary>Frees the torch model's tensors, if there is one.</summary>
    public void Dispose() => Trainable?.Dispose();

    /// <summary>What describes the packed model, stored as JSON beside it.</summary>
    private sealed record Description(LanguageModelOptions Options, string[] Tokens, bool CharacterLevel, EpochSummary[] History, SizeData Size)
    {
        public static Description Of(QuantizedLanguageModel model) =>
            new(model.Options, model.Vocabulary.Tokens.ToArray(), model.Vocabulary.IsCharacterLevel, model.History.ToArray(), SizeData.Of(model.SizeReport()));
    }
}

/// <summary>The numbers a <see cref="ModelSizeReport"/> is made from, as a model file stores them.</summary>
internal sealed record SizeData(long QuantizedParameters, long FloatParameters, long QuantizedPayloadBytes, long PackedBytes)
{
    public static SizeData Of(ModelSizeReport report) =>
        new(report.QuantizedParameterCount, report.FloatParameterCount, report.QuantizedPayloadBytes, report.PackedBytes);

    public ModelSizeReport ToReport() => new(QuantizedParameters, FloatParameters, QuantizedPayloadBytes, PackedBytes);
}
