using Microsoft.ML.Runtime;

namespace Microsoft.ML.Quantized;

/// <summary>
/// What the ML.NET components hold of a trained model (<see cref="LanguageModelParts"/>, <see cref="SequenceClassifierParts"/>):
/// the packed model they score with (with its history and size), and, after Fit or when it was saved with its
/// training weights, the float training weights that KURE fine-tuning and re-quantization (training package) start
/// from. Saves them into an ML.NET model file as three streams: a JSON description, the packed model, and (only when
/// asked) the training model's own file.
/// </summary>
/// <typeparam name="TPacked">The packed model.</typeparam>
internal abstract class ModelParts<TPacked> : IDisposable
    where TPacked : PackedModel
{
    private readonly object _sync = new();
    private ITrainingWeights? _training;
    private bool _disposed;

    private protected ModelParts(TPacked packed, ITrainingWeights? training)
    {
        Packed = packed;
        _training = training;
    }

    /// <summary>The packed model every score comes from.</summary>
    public TPacked Packed { get; }

    /// <summary>Whether the float training weights are here (after Fit, or loaded from a model saved with them).</summary>
    public bool HasTrainingWeights => _training is not null;

    /// <summary>Whether <see cref="Dispose"/> was called.</summary>
    public bool IsDisposed => _disposed;

    /// <summary>
    /// Runs <paramref name="use"/> on the training model under this object's lock (fine-tuning and re-quantization take
    /// turns; scoring does not wait); a model loaded from a file is first read from its training stream with
    /// <paramref name="load"/>, once.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The parts were disposed.</exception>
    /// <exception cref="InvalidOperationException">There are no training weights (<paramref name="noTrainingWeights"/> says what to do).</exception>
    public T UseTraining<TModel, T>(Func<Stream, TModel> load, Func<TModel, T> use, string noTrainingWeights)
        where TModel : class, ITrainingWeights
    {
        lock (_sync)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var model = _training switch
            {
                null => throw new InvalidOperationException(noTrainingWeights),
                TModel m => m,
                SavedTrainingWeights saved => Replace(load(new MemoryStream(saved.Bytes, writable: false))),
                var other => throw new InvalidOperationException($"The training weights are a {other.GetType().Name}, not a {typeof(TModel).Name}."),
            };
            return use(model);
        }

        TModel Replace(TModel loaded)
        {
            _training = loaded;
            return loaded;
        }
    }

    /// <summary>Frees the training model's tensors, if there is one.</summary>
    public void Dispose()
    {
        lock (_sync)
        {
            if (_disposed) return;
            _disposed = true;
            _training?.Dispose();
            _training = null;
        }
    }

    /// <summary>The names of a model's three streams.</summary>
    private protected sealed record StreamNames(string Description, string Packed, string Training);

    /// <summary>The names of this kind of model's three streams.</summary>
    private protected abstract StreamNames Names { get; }

    /// <summary>Writes the packed model's description and network, and the training weights when <paramref name="withTrainingWeights"/> and there are some.</summary>
    /// <exception cref="ObjectDisposedException">The parts were disposed.</exception>
    public void Save(ModelSaveContext ctx, bool withTrainingWeights)
    {
        var names = Names;
        lock (_sync)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            ctx.SaveBinaryStream(names.Description, w => w.Write(Packed.DescriptionJson()));
            ctx.SaveBinaryStream(names.Packed, Packed.WriteNetwork);
            if (withTrainingWeights && _training is { } training)
                ctx.SaveBinaryStream(names.Training, w =>
                {
                    w.Flush();
                    training.Save(w.BaseStream);
                });
        }
    }

    /// <summary>
    /// Reads the streams <see cref="Save"/> wrote: the packed model with <paramref name="readPacked"/> from the description's
    /// JSON and the packed stream, and builds the parts with <paramref name="create"/> (the training stream, when present,
    /// is kept as bytes); for formats that stored only the training model (<paramref name="trainingStreamOnly"/>), hands
    /// its bytes to <paramref name="pack"/>.
    /// </summary>
    /// <exception cref="ModelFormatException">A stream is missing or damaged.</exception>
    private protected static TParts Load<TParts>(ModelLoadContext ctx, StreamNames names, bool trainingStreamOnly,
        Func<string, BinaryReader, TPacked> readPacked, Func<byte[], TParts> pack, Func<TPacked, ITrainingWeights?, TParts> create)
    {
        byte[]? training = null;
        ctx.TryLoadBinaryStream(names.Training, r =>
        {
            using var copy = new MemoryStream();
            r.BaseStream.CopyTo(copy);
            training = copy.ToArray();
        });
        if (trainingStreamOnly) return training is null ? throw Missing(names.Training) : pack(training);
        string? description = null;
        TPacked? packed = null;
        if (!ctx.TryLoadBinaryStream(names.Description, r => description = r.ReadString()))
            throw Missing(names.Description);
        if (!ctx.TryLoadBinaryStream(names.Packed, r => packed = readPacked(description!, r)))
            throw Missing(names.Packed);
        return create(packed!, training is null ? null : new SavedTrainingWeights(training));
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
