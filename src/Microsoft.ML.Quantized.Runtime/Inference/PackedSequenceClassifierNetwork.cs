namespace Microsoft.ML.Quantized;

/// <summary>
/// A recurrent sequence classifier in its packed, immutable, libtorch-free evaluation form: (token embedding | float
/// frames) -> recurrent stack -> the last layer's hidden states pooled over the sequence's steps (<see cref="Pooling"/>) -> linear
/// head -> class logits
/// (softmax gives the probabilities). Weight matrices as stored (<see cref="PackedMatrix"/>). Built by
/// <c>PackedModelEncoder</c>; scored by <see cref="SequenceClassifierScorer"/>.
/// <para>
/// Serialized form (<see cref="Write"/>, little-endian; see <see cref="PackedModelWriter"/>):
/// <list type="table">
/// <item><term>0..3</term><description>magic, ASCII <c>QPSC</c></description></item>
/// <item><term>4</term><description>format version (<see cref="FormatVersion"/>)</description></item>
/// <item><term>byte</term><description>input kind (<see cref="SequenceClassifierInputKind"/>: 0 tokens, 1 frames)</description></item>
/// <item><term>int32 x 2</term><description>input size (vocabulary size or frame size), class count</description></item>
/// <item><term>byte</term><description>pooling (<see cref="SequencePooling"/>: 0 last step, 1 mean, 2 max); absent in format version 1, which is read as last step</description></item>
/// <item><term>tokens only</term><description>int32 embedding size, then the embedding matrix [vocabulary, embedding size]</description></item>
/// <item><term>stack</term><description>the recurrent stack (see <see cref="PackedLanguageModelNetwork"/>)</description></item>
/// <item><term>matrix</term><description>head [classes, hidden size]</description></item>
/// <item><term>floats</term><description>head bias: int32 count (= classes), then the values</description></item>
/// <item><term>last 4</term><description>CRC-32 (IEEE) of every byte above except the matrices' own</description></item>
/// </list>
/// </para>
/// </summary>
internal sealed class PackedSequenceClassifierNetwork
{
    /// <summary>
    /// Version of the serialized form written by <see cref="Write"/>: 2 added the pooling byte, 3 per-gate layer
    /// normalization (normalization kind 3, <see cref="PackedNormalization"/>), 4 the LSTM cell-state quantizer (a sixth
    /// activation quantizer per LSTM layer). Versions 1 to 3 still read (layer normalization in the joint form for 1 and 2,
    /// a float cell state).
    /// </summary>
    public const byte FormatVersion = 4;

    private const string What = "packed sequence classifier";
    private static ReadOnlySpan<byte> Magic => "QPSC"u8;

    private readonly float[] _headBias;

    /// <summary>Creates the classifier (the bias is copied); the sizes must chain: input -> stack -> head.</summary>
    /// <param name="inputKind">Token ids or float frames.</param>
    /// <param name="inputSize">Vocabulary size (tokens; the embedding's rows) or values per frame (frames; the stack's input).</param>
    /// <param name="embedding">The embedding table for token input; null for frames.</param>
    /// <param name="recurrent">The stack.</param>
    /// <param name="head">The head weight [classes, hidden].</param>
    /// <param name="headBias">The head bias [classes].</param>
    /// <param name="pooling">How the last layer's hidden states become the head's input.</param>
    public PackedSequenceClassifierNetwork(
        SequenceClassifierInputKind inputKind, int inputSize, PackedMatrix? embedding, PackedRecurrentStack recurrent, PackedMatrix head, ReadOnlySpan<float> headBias,
        SequencePooling pooling)
    {
        ArgumentNullException.ThrowIfNull(recurrent);
        ArgumentNullException.ThrowIfNull(head);
        switch (inputKind)
        {
            case SequenceClassifierInputKind.Tokens:
                if (embedding is null || embedding.Rows != inputSize || embedding.Columns != recurrent.InputSize)
                    throw new ArgumentException(
                        $"Token input needs an embedding of vocabulary {inputSize} x {recurrent.InputSize} (the stack's input); got " +
                        (embedding is null ? "none." : $"{embedding.Rows} x {embedding.Columns}."), nameof(embedding));
                break;
            case SequenceClassifierInputKind.Frames:
                if (embedding is not null) throw new ArgumentException("Frame input has no embedding.", nameof(embedding));
                if (inputSize != recurrent.InputSize)
                    throw new ArgumentException($"Frames of {inputSize} values do not fit a stack that reads {recurrent.InputSize}.", nameof(inputSize));
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(inputKind), inputKind, "Unknown input kind.");
        }
        if (head.Rows < 2 || head.Columns != recurrent.HiddenSize)
            throw new ArgumentException($"The head is {head.Rows} x {head.Columns}; expected at least 2 classes x hidden {recurrent.HiddenSize}.", nameof(head));
        if (headBias.Length != head.Rows)
            throw new ArgumentException($"The head bias has {headBias.Length} values; expected {head.Rows}.", nameof(headBias));
        if (!Enum.IsDefined(pooling)) throw new ArgumentOutOfRangeException(nameof(pooling), pooling, "Unknown pooling.");
        InputKind = inputKind;
        InputSize = inputSize;
        Embedding = embedding;
        Recurrent = recurrent;
        Head = head;
        _headBias = headBias.ToArray();
        Pooling = pooling;
    }

    /// <summary>Token ids or float frames.</summary>
    public SequenceClassifierInputKind InputKind { get; }

    /// <summary>Vocabulary size (tokens) or values per frame (frames).</summary>
    public int InputSize { get; }

    /// <summary>Number of classes.</summary>
    public int ClassCount => Head.Rows;

    /// <summary>The embedding table [vocabulary, embedding size] (token input); null for frames.</summary>
    public PackedMatrix? Embedding { get; }

    /// <summary>The recurrent stack.</summary>
    public PackedRecurrentStack Recurrent { get; }

    /// <summary>The head weight [classes, hidden size].</summary>
    public PackedMatrix Head { get; }

    /// <summary>The head bias [classes].</summary>
    public ReadOnlySpan<float> HeadBias => _headBias;

    /// <summary>How the last layer's hidden states become the head's input.</summary>
    public SequencePooling Pooling { get; }

    /// <summary>Writes the serialized form described on the class.</summary>
    public void Write(BinaryWriter writer) => PackedModelWriter.Write(writer, Magic, FormatVersion, w =>
    {
        w.WriteByte((byte)InputKind);
        w.WriteInt32(InputSize);
        w.WriteInt32(ClassCount);
        w.WriteByte((byte)Pooling);
        if (Embedding is not null)
        {
            w.WriteInt32(Embedding.Columns);
            w.WriteMatrix(Embedding);
        }
        Recurrent.Write(w);
        w.WriteMatrix(Head);
        w.WriteSingles(_headBias);
    });

    /// <summary>Reads a classifier written by <see cref="Write"/>, validating every field and checksum.</summary>
    /// <exception cref="ModelFormatException">The stream is truncated, foreign, of another format version, or damaged.</exception>
    public static PackedSequenceClassifierNetwork Read(BinaryReader reader) => PackedModelReader.Read(reader, Magic, FormatVersion, oldestVersion: 1, What, (r, version) =>
    {
        byte kind = r.ReadByte("input kind");
        if (kind > (byte)SequenceClassifierInputKind.Frames) throw r.Damaged($"input kind {kind} is unknown");
        var inputKind = (SequenceClassifierInputKind)kind;
        int inputSize = r.ReadInt32("input size", 1, PackedModelReader.MaxDimension);
        int classes = r.ReadInt32("class count", 2, PackedModelReader.MaxDimension);
        var pooling = SequencePooling.Last;
        if (version >= 2)
        {
            byte value = r.ReadByte("pooling");
            if (value > (byte)SequencePooling.Max) throw r.Damaged($"pooling {value} is unknown");
            pooling = (SequencePooling)value;
        }
        PackedMatrix? embedding = null;
        if (inputKind == SequenceClassifierInputKind.Tokens)
            embedding = r.ReadMatrix("embedding", inputSize, r.ReadInt32("embedding size", 1, PackedModelReader.MaxDimension));
        var recurrent = PackedRecurrentStack.Read(r, cellStateQuantizer: version >= 4);
        var head = r.ReadMatrix("head", classes, recurrent.HiddenSize);
        return new PackedSequenceClassifierNetwork(inputKind, inputSize, embedding, recurrent, head, r.ReadSingles("head bias", classes), pooling);
    });
}
