using Microsoft.ML.Runtime;

namespace Microsoft.ML.Quantized;

/// <summary>
/// What the ML.NET components hold of a trained model (<see cref="LanguageModelParts"/>, <see cref="SequenceClassifierParts"/>):
/// the packed model they score with, its training history and size, and, after Fit or when it was saved with its
/// training weights, the torch model that KURE fine-tuning and re-quantization start from. Saves them into an ML.NET
/// model file as three streams: a JSON description, the packed model, and (only when asked) the torch model's own file.
/// </summary>
/// <typeparam name="TPacked">The packed model.</typeparam>
/// <typeparam name="TTrainable">The torch model.</typeparam>
internal abstract class ModelParts<TPacked, TTrainable> : IDisposable
    where TPacked : class
    where TTrainable : class, IDisposable
{
    private protected ModelParts(TPacked packed, IReadOnlyList<EpochSummary> history, ModelSizeReport sizeReport, TTrainable? trainable)
    {
        Packed = packed;
        History = history;
        SizeReport = sizeReport;
        Trainable = trainable;
    }

    /// <summary>The packed model every score comes from.</summary>
    public TPacked Packed { get; }

    /// <summary>Training history, one entry per epoch.</summary>
    public IReadOnlyList<EpochSummary> History { get; }

    /// <summary>Parameters and packed bytes, as measured when the model was trained.</summary>
    public ModelSizeReport SizeReport { get; }

    /// <summary>The torch model with its float training weights, or null when it was saved without them.</summary>
    public TTrainable? Trainable { get; }

    /// <summary>Frees the torch model's tensors, if there is one.</summary>
    public void Dispose() => Trainable?.Dispose();

    /// <summary>The names of a model's three streams.</summary>
    private protected sealed record StreamNames(string Description, string Packed, string Training);

    /// <summary>
    /// Writes the description, the packed model, and the torch model when <paramref name="withTrainingWeights"/> and
    /// there is one.
    /// </summary>
    private protected void Save(ModelSaveContext ctx, StreamNames names, string descriptionJson, Action<TPacked, BinaryWriter> writePacked,
        Action<TTrainable, Stream> writeTrainable, bool withTrainingWeights)
    {
        ctx.SaveBinaryStream(names.Description, w => w.Write(descriptionJson));
        ctx.SaveBinaryStream(names.Packed, w => writePacked(Packed, w));
        if (withTrainingWeights && Trainable is not null)
            ctx.SaveBinaryStream(names.Training, w =>
            {
                w.Flush();
                writeTrainable(Trainable, w.BaseStream);
            });
    }

    /// <summary>
    /// Reads the streams <see cref="Save"/> wrote and builds the parts with <paramref name="create"/>; for formats that stored
    /// only the torch model (<paramref name="trainingStreamOnly"/>), reads it and packs it with <paramref name="pack"/>.
    /// The torch model is disposed if anything fails.
    /// </summary>
    /// <exception cref="ModelFormatException">A stream is missing or damaged.</exception>
    private protected static TParts Load<TParts, TDescription>(ModelLoadContext ctx, StreamNames names, bool trainingStreamOnly, string what,
        Func<BinaryReader, TPacked> readPacked, Func<Stream, TTrainable> readTrainable, Func<TTrainable, TParts> pack,
        Func<TPacked, TDescription, TTrainable?, TParts> create)
        where TDescription : class
    {
        TTrainable? trainable = null;
        try
        {
            ctx.TryLoadBinaryStream(names.Training, r => trainable = readTrainable(r.BaseStream));
            if (trainingStreamOnly) return trainable is null ? throw Missing(names.Training) : pack(trainable);
            TDescription? description = null;
            TPacked? packed = null;
            if (!ctx.TryLoadBinaryStream(names.Description, r => description = ModelFile.ReadHeader<TDescription>(r.ReadString(), what)))
                throw Missing(names.Description);
            if (!ctx.TryLoadBinaryStream(names.Packed, r => packed = readPacked(r)))
                throw Missing(names.Packed);
            return create(packed!, description!, trainable);
        }
        catch
        {
            trainable?.Dispose();
            throw;
        }
    }

    private static ModelFormatException Missing(string stream) =>
        new($"the '{stream}' stream is missing: the file is damaged or was not written by Microsoft.ML.Quantized");
}

/// <summary>The numbers a <see cref="ModelSizeReport"/> is made from, as a model file stores them.</summary>
internal sealed record SizeData(long QuantizedParameters, long FloatParameters, long QuantizedPayloadBytes, long PackedBytes)
{
    public static SizeData Of(ModelSizeReport report) =>
        new(report.QuantizedParameterCount, report.FloatParameterCount, report.QuantizedPayloadBytes, report.PackedBytes);

    public ModelSizeReport ToReport() => new(QuantizedParameters, FloatParameters, QuantizedPayloadBytes, PackedBytes);
}
