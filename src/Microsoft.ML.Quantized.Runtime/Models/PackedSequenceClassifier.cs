using System.Text.Json;

namespace Microsoft.ML.Quantized;

/// <summary>
/// A trained sequence classifier in its deployable form: the packed low-bit weights (the training package's
/// <c>QuantizedSequenceClassifier.Pack()</c>) with its options and training history, scored by the managed engine of
/// this runtime package, without TorchSharp or libtorch. Its file (<see cref="PackedModel.Save(string)"/>) holds no float training
/// weights; the training package's <c>QuantizedSequenceClassifier.Save</c> writes those, for continuing training.
/// Immutable; predictions may run on several threads at once.
/// </summary>
public sealed class PackedSequenceClassifier : PackedModel
{
    private readonly SequenceClassifierOptions _options;

    internal PackedSequenceClassifier(PackedSequenceClassifierNetwork network, SequenceClassifierOptions options, IReadOnlyList<EpochSummary> history, ModelSizeReport size)
        : base(history, size)
    {
        if (network.ClassCount != options.ClassCount || network.Recurrent.HiddenSize != options.Recurrent.HiddenSize)
            throw new ModelFormatException($"The packed classifier ({network.ClassCount} classes, hidden {network.Recurrent.HiddenSize}) does not match its description ({options.ClassCount} classes, hidden {options.Recurrent.HiddenSize}).");
        if (network.Pooling != options.Pooling)
            throw new ModelFormatException($"The packed classifier pools with {network.Pooling}; its description says {options.Pooling}.");
        Network = network;
        _options = options;
    }

    /// <summary>The classifier's options (a copy).</summary>
    public SequenceClassifierOptions Options => _options.Clone();

    /// <summary>Token ids or float frames.</summary>
    public SequenceClassifierInputKind InputKind => Network.InputKind;

    /// <summary>Number of classes.</summary>
    public int ClassCount => Network.ClassCount;

    /// <summary>The packed network the engine runs.</summary>
    internal PackedSequenceClassifierNetwork Network { get; }

    /// <summary>The options without a copy, for this library's own reads.</summary>
    internal SequenceClassifierOptions Configuration => _options;

    /// <summary>Classifies one token sequence (at least one id, each in the vocabulary).</summary>
    /// <exception cref="InvalidOperationException">The classifier reads float frames.</exception>
    public SequenceClassifierPrediction Predict(int[] sequence)
    {
        ArgumentNullException.ThrowIfNull(sequence);
        var p = new float[ClassCount];
        new SequenceClassifierScorer(Network).Predict(sequence, p);
        return Prediction(p);
    }

    /// <summary>Classifies one float sequence (one or more whole frames of <see cref="SequenceClassifierOptions.FrameSize"/> values).</summary>
    /// <exception cref="InvalidOperationException">The classifier reads token ids.</exception>
    public SequenceClassifierPrediction Predict(float[] sequence)
    {
        ArgumentNullException.ThrowIfNull(sequence);
        var p = new float[ClassCount];
        new SequenceClassifierScorer(Network).Predict(sequence, p);
        return Prediction(p);
    }

    /// <summary>Accuracy, log-loss and (binary) AUC on labelled token sequences.</summary>
    public SequenceClassifierEvaluation Evaluate(IReadOnlyList<int[]> sequences, int[] labels) =>
        Evaluate(sequences, labels, (scorer, s, p) => scorer.Predict(s, p));

    /// <summary>Accuracy, log-loss and (binary) AUC on labelled float sequences.</summary>
    public SequenceClassifierEvaluation Evaluate(IReadOnlyList<float[]> sequences, int[] labels) =>
        Evaluate(sequences, labels, (scorer, s, p) => scorer.Predict(s, p));

    private SequenceClassifierEvaluation Evaluate<T>(IReadOnlyList<T[]> sequences, int[] labels, Action<SequenceClassifierScorer, T[], float[]> predict)
    {
        ArgumentNullException.ThrowIfNull(sequences);
        ArgumentNullException.ThrowIfNull(labels);
        if (sequences.Count != labels.Length)
            throw new ArgumentException($"sequences ({sequences.Count}) and labels ({labels.Length}) differ in length.", nameof(labels));
        int classes = ClassCount;
        var scorer = new SequenceClassifierScorer(Network);
        var logProbabilities = new float[(long)sequences.Count * classes];
        var p = new float[classes];
        for (int i = 0; i < sequences.Count; i++)
        {
            if ((uint)labels[i] >= (uint)classes)
                throw new ArgumentOutOfRangeException(nameof(labels), labels[i], $"labels[{i}] = {labels[i]} is outside [0, {classes}).");
            predict(scorer, sequences[i] ?? throw new ArgumentException($"sequences[{i}] is null.", nameof(sequences)), p);
            for (int c = 0; c < classes; c++) logProbabilities[(long)i * classes + c] = MathF.Log(MathF.Max(p[c], float.Epsilon));
        }
        return SequenceClassifierEvaluation.Of(logProbabilities, labels, classes);
    }

    private static SequenceClassifierPrediction Prediction(float[] p)
    {
        int best = 0;
        for (int c = 1; c < p.Length; c++)
            if (p[c] > p[best]) best = c;
        return new SequenceClassifierPrediction(best, p);
    }

    /// <summary>Loads a classifier saved by <see cref="PackedModel.Save(string)"/>.</summary>
    /// <exception cref="ModelFormatException">The file is damaged, not a packed sequence classifier, or of another format version.</exception>
    public static PackedSequenceClassifier Load(string path)
    {
        using var file = File.OpenRead(path);
        return Load(file);
    }

    /// <summary>Loads a classifier from a stream.</summary>
    /// <exception cref="ModelFormatException">The stream is damaged, not a packed sequence classifier, or of another format version.</exception>
    public static PackedSequenceClassifier Load(Stream stream) => Load(stream, FileKind, Read);

    private const string FileKind = "packed-sequence-classifier";

    /// <summary>The kind named in the file header.</summary>
    private protected override string Kind => FileKind;

    /// <summary>The JSON description stored beside the network (options, history, size).</summary>
    internal override string DescriptionJson() =>
        JsonSerializer.Serialize(new Description(_options, History.ToArray(), SizeData.Of(SizeReport())), ModelFile.HeaderJson);

    /// <summary>Writes the packed network.</summary>
    internal override void WriteNetwork(BinaryWriter writer) => Network.Write(writer);

    /// <inheritdoc />
    private protected override void WriteOnnx(OnnxExportOptions options, Stream stream) => OnnxExport.Write(Network, options, stream);

    /// <summary>The classifier from its description and its network's serialized form.</summary>
    /// <exception cref="ModelFormatException">Either part is damaged, or they do not match.</exception>
    internal static PackedSequenceClassifier Read(string descriptionJson, BinaryReader network)
    {
        var d = ModelFile.ReadHeader<Description>(descriptionJson, "sequence-classifier description");
        return new PackedSequenceClassifier(PackedSequenceClassifierNetwork.Read(network), d.Options, d.History, d.Size.ToReport());
    }

    private sealed record Description(SequenceClassifierOptions Options, EpochSummary[] History, SizeData Size);
}
