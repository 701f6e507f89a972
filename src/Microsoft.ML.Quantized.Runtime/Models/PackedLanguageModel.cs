using System.Text.Json;

namespace Microsoft.ML.Quantized;

/// <summary>
/// A trained language model in its deployable form: the packed low-bit weights (the training package's
/// <c>QuantizedLanguageModel.Pack()</c>) with the vocabulary, options and training history, scored by the managed
/// engine of this runtime package, without TorchSharp or libtorch. Its file (<see cref="PackedModel.Save(string)"/>) holds no
/// float training weights; the training package's <c>QuantizedLanguageModel.Save</c> writes those, for continuing
/// training. Immutable; <see cref="Evaluate(int[])"/> and <see cref="Generate"/> may run on several threads at once.
/// </summary>
public sealed class PackedLanguageModel : PackedModel
{
    private readonly LanguageModelOptions _options;

    internal PackedLanguageModel(PackedLanguageModelNetwork network, LanguageModelOptions options, Vocabulary vocabulary, IReadOnlyList<EpochSummary> history, ModelSizeReport size)
        : base(history, size)
    {
        if (network.VocabularySize != vocabulary.Count || network.Recurrent.HiddenSize != options.Recurrent.HiddenSize)
            throw new ModelFormatException($"The packed language model ({network.VocabularySize} tokens, hidden {network.Recurrent.HiddenSize}) does not match its description ({vocabulary.Count} tokens, hidden {options.Recurrent.HiddenSize}).");
        Network = network;
        _options = options;
        Vocabulary = vocabulary;
    }

    /// <summary>The network's options (a copy).</summary>
    public LanguageModelOptions Options => _options.Clone();

    /// <summary>The tokens.</summary>
    public Vocabulary Vocabulary { get; }

    /// <summary>The packed network the engine runs.</summary>
    internal PackedLanguageModelNetwork Network { get; }

    /// <summary>The options without a copy, for this library's own reads.</summary>
    internal LanguageModelOptions Configuration => _options;

    /// <summary>Cross-entropy, perplexity and bits per token on <paramref name="text"/> (characters or words the vocabulary lacks are skipped).</summary>
    public LanguageModelEvaluation Evaluate(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return Evaluate(Vocabulary.Encode(text, skipUnknownCharacters: true));
    }

    /// <summary>
    /// Cross-entropy, perplexity and bits per token on token ids, as <c>QuantizedLanguageModel.Evaluate</c> computes it:
    /// the ids are cut into <see cref="EvaluationStreams"/> equal consecutive streams (the remainder dropped), each read
    /// from the zero state, and every id but a stream's first is predicted from the ids before it.
    /// </summary>
    /// <exception cref="ArgumentException">Too few ids (each stream needs two), or an id outside the vocabulary.</exception>
    public LanguageModelEvaluation Evaluate(int[] tokens)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        Vocabulary.CheckIds(tokens, nameof(tokens));
        int streams = EvaluationStreams(tokens.Length), length = tokens.Length / streams;
        if (length < 2)
            throw new ArgumentException($"The token stream has {tokens.Length} tokens: too few for {streams} streams (each needs at least 2 tokens).", nameof(tokens));
        var scorer = new LanguageModelScorer(Network);
        var hidden = new float[Network.Recurrent.HiddenSize];
        double total = 0;
        for (int s = 0; s < streams; s++) total += scorer.Score(tokens.AsSpan(s * length, length), hidden).CrossEntropySum;
        return new LanguageModelEvaluation(total / ((long)(length - 1) * streams), (long)(length - 1) * streams);
    }

    /// <summary>
    /// Continues <paramref name="prompt"/> with <paramref name="length"/> sampled tokens (as <c>QuantizedLanguageModel.Generate</c>
    /// reads a prompt). Temperature 1 samples the model's distribution, lower is more conservative, 0 takes the most likely
    /// token; the same seed gives the same text on every machine.
    /// </summary>
    public string Generate(string prompt, int length, double temperature = 1.0, int seed = 0)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        if (!(temperature >= 0) || double.IsInfinity(temperature))
            throw new ArgumentOutOfRangeException(nameof(temperature), temperature, "temperature must be a finite number >= 0.");
        var ids = PromptIds(Vocabulary, prompt);
        return Vocabulary.Decode(LanguageModelSampling.Generate(new LanguageModelScorer(Network), ids, length, temperature, seed, stopId: -1));
    }

    /// <summary>
    /// The ids a prompt is read as: its tokens, without the <c>&lt;eos&gt;</c> a word vocabulary appends to an open prompt
    /// (one not ending in a newline); id 0 alone for an empty prompt.
    /// </summary>
    internal static List<int> PromptIds(Vocabulary vocabulary, string prompt)
    {
        var ids = vocabulary.Encode(prompt, skipUnknownCharacters: true).ToList();
        if (!vocabulary.IsCharacterLevel && ids.Count > 0 && !prompt.EndsWith('\n')) ids.RemoveAt(ids.Count - 1);
        if (ids.Count == 0) ids.Add(0);
        return ids;
    }

    /// <summary>How many parallel streams evaluation cuts <paramref name="tokens"/> ids into: tokens / 2, between 1 and 10.</summary>
    internal static int EvaluationStreams(int tokens) => Math.Max(1, Math.Min(10, tokens / 2));

    /// <summary>Loads a model saved by <see cref="PackedModel.Save(string)"/>.</summary>
    /// <exception cref="ModelFormatException">The file is damaged, not a packed language model, or of another format version.</exception>
    public static PackedLanguageModel Load(string path)
    {
        using var file = File.OpenRead(path);
        return Load(file);
    }

    /// <summary>Loads a model from a stream.</summary>
    /// <exception cref="ModelFormatException">The stream is damaged, not a packed language model, or of another format version.</exception>
    public static PackedLanguageModel Load(Stream stream) => Load(stream, FileKind, Read);

    private const string FileKind = "packed-language-model";

    /// <summary>The kind named in the file header.</summary>
    private protected override string Kind => FileKind;

    /// <summary>The JSON description stored beside the network (options, tokens, history, size).</summary>
    internal override string DescriptionJson() =>
        JsonSerializer.Serialize(new Description(_options, Vocabulary.Tokens.ToArray(), Vocabulary.IsCharacterLevel, History.ToArray(), SizeData.Of(SizeReport())), ModelFile.HeaderJson);

    /// <summary>Writes the packed network.</summary>
    internal override void WriteNetwork(BinaryWriter writer) => Network.Write(writer);

    /// <inheritdoc />
    private protected override void WriteOnnx(OnnxExportOptions options, Stream stream) => OnnxExport.Write(Network, options, stream);

    /// <summary>The model from its description and its network's serialized form.</summary>
    /// <exception cref="ModelFormatException">Either part is damaged, or they do not match.</exception>
    internal static PackedLanguageModel Read(string descriptionJson, BinaryReader network)
    {
        var d = ModelFile.ReadHeader<Description>(descriptionJson, "language-model description");
        return new PackedLanguageModel(PackedLanguageModelNetwork.Read(network), d.Options, Vocabulary.FromTokens(d.Tokens, d.CharacterLevel), d.History, d.Size.ToReport());
    }

    private sealed record Description(LanguageModelOptions Options, string[] Tokens, bool CharacterLevel, EpochSummary[] History, SizeData Size);
}
