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
