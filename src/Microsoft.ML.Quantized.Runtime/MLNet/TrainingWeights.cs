namespace Microsoft.ML.Quantized;

/// <summary>
/// A model's float training weights as the scoring side holds them: the torch model of the training package (which
/// implements this), or, in a model loaded from a file, the bytes of its training stream until the training package
/// first needs the torch model. Scoring never reads them.
/// </summary>
internal interface ITrainingWeights : IDisposable
{
    /// <summary>Writes the training weights in the training package's checksummed model format.</summary>
    void Save(Stream stream);
}

/// <summary>The training stream of a loaded model, kept as bytes (so a process without libtorch can load and save it again).</summary>
internal sealed class SavedTrainingWeights(byte[] bytes) : ITrainingWeights
{
    /// <summary>The stream's bytes.</summary>
    public byte[] Bytes { get; } = bytes;

    /// <summary>Writes the bytes back unchanged.</summary>
    public void Save(Stream stream) => stream.Write(Bytes);

    /// <summary>Nothing to free.</summary>
    public void Dispose()
    {
    }
}
