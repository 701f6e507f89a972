namespace Microsoft.ML.Quantized;

/// <summary>
/// The deployable form of a trained model (<see cref="PackedLanguageModel"/>, <see cref="PackedSequenceClassifier"/>):
/// packed low-bit weights with their description, scored by the managed engine of this runtime package without
/// TorchSharp or libtorch, and saved without the float training weights. Immutable.
/// </summary>
public abstract class PackedModel
{
    private readonly ModelSizeReport _size;

    private protected PackedModel(IReadOnlyList<EpochSummary> history, ModelSizeReport size)
    {
        History = history;
        _size = size;
    }

    /// <summary>Training history, one entry per epoch.</summary>
    public IReadOnlyList<EpochSummary> History { get; }

    /// <summary>Parameters, bits per quantized weight including scales, packed and float32 bytes, as measured when the model was packed.</summary>
    public ModelSizeReport SizeReport() => _size;

    /// <summary>Saves the packed model to a versioned, checksummed file (no float training weights).</summary>
    public void Save(string path)
    {
        using var file = File.Create(path);
        Save(file);
    }

    /// <summary>Saves the packed model to a stream.</summary>
    public void Save(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ModelFile.Write(stream, Kind, DescriptionJson(), PackedModelWriter.ToBytes(WriteNetwork));
    }

    /// <summary>
    /// Exports the scoring graph to an ONNX file at <paramref name="path"/> (created or overwritten); see
    /// <see cref="ExportToOnnx(Stream, OnnxExportOptions?)"/>.
    /// </summary>
    public void ExportToOnnx(string path, OnnxExportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        var bytes = new MemoryStream();
        ExportToOnnx(bytes, options);
        using var file = File.Create(path);
        bytes.Position = 0;
        bytes.CopyTo(file);
    }

    /// <summary>
    /// Writes the model's scoring graph as an ONNX model (standard domain, opset <see cref="OnnxExportOptions.Opset"/>) that
    /// gives the same outputs as this library's engine (to float rounding): the embedding or frames, one node per recurrent
    /// layer, and the head or decoder. A layer whose cell is exactly ONNX's (no layer or batch normalization, slopes 1, no
    /// activation quantizer) becomes an ONNX <c>LSTM</c> or <c>GRU</c>; any other a <c>Scan</c> that runs the engine's cell
    /// step by step (normalizations, slopes and activation quantizers in their evaluation form). Weights are float32, or with
    /// <see cref="OnnxWeightFormat.QuantizeDequantize"/> int8 codes with per-row <c>DequantizeLinear</c> scales.
    /// <para>Inputs and outputs: a <see cref="PackedSequenceClassifier"/> reads <c>tokens</c> (int64 [batch, time]) or
    /// <c>frames</c> (float [batch, time, frame size]) and <c>lengths</c> (int64 [batch], 1..time: the steps read per row)
    /// and outputs <c>probabilities</c> (float [batch, classes]); a <see cref="PackedLanguageModel"/> reads <c>tokens</c>
    /// (int64 [batch, time], vocabulary ids) and outputs <c>logits</c> (float [batch, time, vocabulary], the next-token logits
    /// after each step from the zero state) or <c>log_probabilities</c>.</para>
    /// </summary>
    /// <param name="stream">Where to write the ONNX protobuf.</param>
    /// <param name="options">Weight format and output; null for the defaults (float weights, logits).</param>
    public void ExportToOnnx(Stream stream, OnnxExportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        WriteOnnx(options ?? new OnnxExportOptions(), stream);
    }

    /// <summary>Writes the ONNX graph (<see cref="OnnxExport"/>).</summary>
    private protected abstract void WriteOnnx(OnnxExportOptions options, Stream stream);

    /// <summary>The kind named in the file header.</summary>
    private protected abstract string Kind { get; }

    /// <summary>The JSON description stored beside the network (options, history, size, and what else the model needs).</summary>
    internal abstract string DescriptionJson();

    /// <summary>Writes the packed network in its checksummed form.</summary>
    internal abstract void WriteNetwork(BinaryWriter writer);

    /// <summary>Reads a <paramref name="kind"/> file written by <see cref="Save(Stream)"/> and builds the model with <paramref name="read"/>.</summary>
    /// <exception cref="ModelFormatException">The stream is damaged, of another kind, or of another format version.</exception>
    private protected static T Load<T>(Stream stream, string kind, Func<string, BinaryReader, T> read)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var (json, payload) = ModelFile.Read(stream, kind);
        using var reader = new BinaryReader(new MemoryStream(payload, writable: false));
        return read(json, reader);
    }
}
