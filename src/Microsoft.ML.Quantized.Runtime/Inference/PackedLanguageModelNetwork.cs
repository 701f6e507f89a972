namespace Microsoft.ML.Quantized;

/// <summary>
/// A recurrent language model in its packed, immutable, libtorch-free evaluation form: embedding table -> recurrent
/// stack -> decoder logits, every weight matrix as it is stored (<see cref="PackedMatrix"/>: low-bit codes and scales, or
/// float32 where the model keeps float). Built by <c>PackedModelEncoder</c>; scored by
/// <see cref="LanguageModelScorer"/>.
/// <para>
/// Serialized form (<see cref="Write"/>, little-endian; see <see cref="PackedModelWriter"/>):
/// <list type="table">
/// <item><term>0..3</term><description>magic, ASCII <c>QPLM</c></description></item>
/// <item><term>4</term><description>format version (<see cref="FormatVersion"/>)</description></item>
/// <item><term>int32 x 2</term><description>vocabulary size, embedding size</description></item>
/// <item><term>matrix</term><description>embedding [vocabulary, embedding size]; row t is token t's vector</description></item>
/// <item><term>stack</term><description>the recurrent stack (<see cref="PackedRecurrentStack"/>: cell, layer count, sizes,
/// then per layer the input and recurrent projections, each a matrix, a normalization and a bias, the slopes, the
/// activation quantizers and for the LSTM the cell-state normalization)</description></item>
/// <item><term>matrix</term><description>decoder [vocabulary, hidden size]</description></item>
/// <item><term>floats</term><description>decoder bias: int32 count (= vocabulary size), then the values</description></item>
/// <item><term>last 4</term><description>CRC-32 (IEEE) of every byte above except the matrices' own (each matrix ends in
/// its own CRC-32)</description></item>
/// </list>
/// A float array is always an int32 count and then the values; a matrix is <see cref="PackedMatrix"/>'s serialized form.
/// </para>
/// </summary>
internal sealed class PackedLanguageModelNetwork
{
    /// <summary>
    /// Version of the serialized form written by <see cref="Write"/>: 2 added per-gate layer normalization (normalization
    /// kind 3, <see cref="PackedNormalization"/>), 3 the LSTM cell-state quantizer (a sixth activation quantizer per LSTM
    /// layer). Versions 1 and 2 still read (layer normalization in the joint form for version 1, a float cell state).
    /// </summary>
    public const byte FormatVersion = 3;

    private const string What = "packed language model";
    private static ReadOnlySpan<byte> Magic => "QPLM"u8;

    private readonly float[] _decoderBias;

    /// <summary>Creates the model (the bias is copied); the sizes must chain: embedding -> stack -> decoder.</summary>
    public PackedLanguageModelNetwork(PackedMatrix embedding, PackedRecurrentStack recurrent, PackedMatrix decoder, ReadOnlySpan<float> decoderBias)
    {
        ArgumentNullException.ThrowIfNull(embedding);
        ArgumentNullException.ThrowIfNull(recurrent);
        ArgumentNullException.ThrowIfNull(decoder);
        if (embedding.Rows < 1 || embedding.Columns != recurrent.InputSize)
            throw new ArgumentException($"The embedding is {embedding.Rows} x {embedding.Columns}; the stack reads {recurrent.InputSize} values.", nameof(embedding));
        if (decoder.Rows != embedding.Rows || decoder.Columns != recurrent.HiddenSize)
            throw new ArgumentException(
                $"The decoder is {decoder.Rows} x {decoder.Columns}; expected vocabulary {embedding.Rows} x hidden {recurrent.HiddenSize}.", nameof(decoder));
        if (decoderBias.Length != decoder.Rows)
            throw new ArgumentException($"The decoder bias has {decoderBias.Length} values; expected {decoder.Rows}.", nameof(decoderBias));
        Embedding = embedding;
        Recurrent = recurrent;
        Decoder = decoder;
        _decoderBias = decoderBias.ToArray();
    }

    /// <summary>Token ids are in [0, VocabularySize).</summary>
    public int VocabularySize => Embedding.Rows;

    /// <summary>The embedding table [vocabulary, embedding size].</summary>
    public PackedMatrix Embedding { get; }

    /// <summary>The recurrent stack.</summary>
    public PackedRecurrentStack Recurrent { get; }

    /// <summary>The decoder weight [vocabulary, hidden size].</summary>
    public PackedMatrix Decoder { get; }

    /// <summary>The decoder bias [vocabulary].</summary>
    public ReadOnlySpan<float> DecoderBias => _decoderBias;

    /// <summary>Writes the serialized form described on the class.</summary>
    public void Write(BinaryWriter writer) => PackedModelWriter.Write(writer, Magic, FormatVersion, w =>
    {
        w.WriteInt32(VocabularySize);
        w.WriteInt32(Embedding.Columns);
        w.WriteMatrix(Embedding);
        Recurrent.Write(w);
        w.WriteMatrix(Decoder);
        w.WriteSingles(_decoderBias);
    });

    /// <summary>Reads a model written by <see cref="Write"/>, validating every field and checksum.</summary>
    /// <exception cref="ModelFormatException">The stream is truncated, foreign, of another format version, or damaged.</exception>
    public static PackedLanguageModelNetwork Read(BinaryReader reader) => PackedModelReader.Read(reader, Magic, FormatVersion, oldestVersion: 1, What, (r, version) =>
    {
        int vocabulary = r.ReadInt32("vocabulary size", 1, PackedModelReader.MaxDimension);
        int embeddingSize = r.ReadInt32("embedding size", 1, PackedModelReader.MaxDimension);
        var embedding = r.ReadMatrix("embedding", vocabulary, embeddingSize);
        var recurrent = PackedRecurrentStack.Read(r, cellStateQuantizer: version >= 3);
        var decoder = r.ReadMatrix("decoder", vocabulary, recurrent.HiddenSize);
        return new PackedLanguageModelNetwork(embedding, recurrent, decoder, r.ReadSingles("decoder bias", vocabulary));
    });
}
