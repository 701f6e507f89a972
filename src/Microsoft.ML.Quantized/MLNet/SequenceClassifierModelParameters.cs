using Microsoft.ML.Data;
using Microsoft.ML.Runtime;

namespace Microsoft.ML.Quantized;

/// <summary>
/// The trained model of a quantized sequence-classifier trainer, as ML.NET model parameters: a
/// <see cref="QuantizedSequenceClassifier"/> plus what it needs to read the features column (token keys or float
/// frames). Scoring reads one row at a time; the torch model is guarded by a lock, so cursors on several threads and
/// <c>PredictionEngine</c>s are safe (they take turns). The model binds to the schema itself (<c>ISchemaBindableMapper</c>),
/// so it reads token keys and float sequences of any length and its errors name the row. Saved inside the ML.NET model file in the library's own
/// versioned, checksummed format. Dispose it (or let the garbage collector) to free the torch tensors.
/// </summary>
public abstract class SequenceClassifierModelParameters : ICanSaveModel, ISchemaBindableMapper, IDisposable
{
    private protected const string ModelStreamName = "QuantizedSequenceClassifier.bin";
    private readonly object _sync = new();
    private readonly bool _binary;
    private bool _disposed;

    private protected SequenceClassifierModelParameters(IHostEnvironment env, string name, QuantizedSequenceClassifier classifier,
        ulong keyCount, string featureColumnName, bool binary)
    {
        _binary = binary;
        Host = Contracts.CheckRef(env, nameof(env)).Register(name);
        Host.CheckValue(classifier, nameof(classifier));
        Classifier = classifier;
        KeyCount = keyCount;
        FeatureColumnName = featureColumnName;
        if (InputKind == SequenceClassifierInputKind.Tokens && (keyCount == 0 || keyCount > (ulong)classifier.Options.VocabularySize))
            throw Host.Except($"The key count {keyCount} does not fit the classifier's vocabulary of {classifier.Options.VocabularySize}: the model is inconsistent.");
        InputType = InputKind == SequenceClassifierInputKind.Tokens
            ? new VectorDataViewType(new KeyDataViewType(typeof(uint), keyCount))
            : new VectorDataViewType(NumberDataViewType.Single);
        classifier.Network.eval();
    }

    private protected IHost Host { get; }

    /// <summary>The environment to build transformers over these parameters with.</summary>
    internal IHostEnvironment Env => Host;

    /// <summary>
    /// New parameters of the same kind over <see cref="QuantizedSequenceClassifier.WithQuantization"/> of this classifier
    /// (same columns and key count), made by <paramref name="create"/>.
    /// </summary>
    private protected T Requantized<T>(QuantizerOptions weights, Func<QuantizedSequenceClassifier, T> create)
    {
        var classifier = UseClassifier(c => c.WithQuantization(weights));
        try
        {
            return create(classifier);
        }
        catch
        {
            classifier.Dispose();
            throw;
        }
    }

    /// <summary>The trained classifier. Owned by these model parameters: do not dispose it.</summary>
    public QuantizedSequenceClassifier Classifier { get; }

    /// <summary>Whether the features column holds token keys or float frames.</summary>
    public SequenceClassifierInputKind InputKind => Classifier.InputKind;

    /// <summary>Number of classes.</summary>
    public int ClassCount => Classifier.ClassCount;

    /// <summary>Float features: values per time step.</summary>
    public int FrameSize => Classifier.Options.FrameSize;

    /// <summary>Token features: the key count of the features column's key type (keys 1..KeyCount are token ids 0..KeyCount-1); 0 for float features.</summary>
    public ulong KeyCount { get; }

    /// <summary>Training history, one entry per epoch.</summary>
    public IReadOnlyList<EpochSummary> History => Classifier.History;

    /// <summary>Name of the features column trained on (used in error messages).</summary>
    public string FeatureColumnName { get; }

    /// <summary>The features column type the model reads: <c>Vector&lt;Key&lt;UInt32&gt;&gt;</c> of <see cref="KeyCount"/> keys, or <c>Vector&lt;Single&gt;</c>.</summary>
    private protected DataViewType InputType { get; }

    /// <summary>Parameters, bits per quantized weight including scales, packed and float32 bytes.</summary>
    public ModelSizeReport SizeReport()
    {
        lock (_sync) return Classifier.SizeReport();
    }

    /// <summary>Frees the torch tensors of the model.</summary>
    public void Dispose()
    {
        lock (_sync)
        {
            if (_disposed) return;
            _disposed = true;
            Classifier.Dispose();
        }
        GC.SuppressFinalize(this);
    }

    /// <summary>Class probabilities of one row's features.</summary>
    private protected delegate float[] RowScorer<TSrc>(in TSrc features);

    /// <summary>A scorer for <typeparamref name="TSrc"/>, which must be the raw type of <see cref="InputType"/>.</summary>
    private protected RowScorer<TSrc> GetRowScorer<TSrc>()
    {
        if (InputKind == SequenceClassifierInputKind.Tokens)
        {
            Host.Check(typeof(TSrc) == typeof(VBuffer<uint>), $"The features of this model are {InputType}, read as VBuffer<uint>, not {typeof(TSrc).Name}.");
            RowScorer<VBuffer<uint>> tokens = (in VBuffer<uint> src) =>
                Predict(SequenceClassifierFeatureColumn.Tokens(Host, src, KeyCount, FeatureColumnName, null));
            return (RowScorer<TSrc>)(Delegate)tokens;
        }
        Host.Check(typeof(TSrc) == typeof(VBuffer<float>), $"The features of this model are {InputType}, read as VBuffer<float>, not {typeof(TSrc).Name}.");
        RowScorer<VBuffer<float>> frames = (in VBuffer<float> src) =>
            Predict(SequenceClassifierFeatureColumn.Frames(Host, src, FrameSize, FeatureColumnName, null));
        return (RowScorer<TSrc>)(Delegate)frames;
    }

    /// <summary>
    /// A scorer of the current row of <paramref name="input"/>: reads <paramref name="feature"/> and returns the class
    /// probabilities; errors name the column, the row and the value. One per cursor (reuses buffers).
    /// </summary>
    internal Func<float[]> CreateRowScorer(DataViewRow input, DataViewSchema.Column feature)
    {
        if (InputKind == SequenceClassifierInputKind.Tokens)
        {
            var getter = input.GetGetter<VBuffer<uint>>(feature);
            VBuffer<uint> keys = default;
            return () =>
            {
                getter(ref keys);
                return Predict(SequenceClassifierFeatureColumn.Tokens(Host, keys, KeyCount, feature.Name, input.Position));
            };
        }
        var frameGetter = input.GetGetter<VBuffer<float>>(feature);
        VBuffer<float> values = default;
        return () =>
        {
            frameGetter(ref values);
            return Predict(SequenceClassifierFeatureColumn.Frames(Host, values, FrameSize, feature.Name, input.Position));
        };
    }

    ISchemaBoundMapper ISchemaBindableMapper.Bind(IHostEnvironment env, RoleMappedSchema schema)
    {
        Contracts.CheckValue(env, nameof(env));
        env.CheckValue(schema, nameof(schema));
        return new SequenceClassifierRowMapper(this, schema, CheckFeature(schema), _binary);
    }

    /// <summary>Checks that <paramref name="schema"/>'s feature column is the type this model reads.</summary>
    internal DataViewSchema.Column CheckFeature(RoleMappedSchema schema)
    {
        var feature = schema.Feature ?? throw Host.Except("The schema has no feature column.");
        if (SequenceClassifierFeatureColumn.KindOf(feature.Type) != InputKind ||
            InputKind == SequenceClassifierInputKind.Tokens && !feature.Type.Equals(InputType))
            throw Host.ExceptSchemaMismatch(nameof(schema), "feature", feature.Name, InputType.ToString(), feature.Type.ToString());
        return feature;
    }

    private float[] Predict(int[] ids) => UseClassifier(c => c.Predict(ids).Probabilities);

    private float[] Predict(float[] frames) => UseClassifier(c => c.Predict(frames).Probabilities);

    /// <summary>Runs <paramref name="use"/> on the classifier under the model's lock (scoring waits meanwhile).</summary>
    /// <exception cref="ObjectDisposedException">These model parameters were disposed.</exception>
    internal T UseClassifier<T>(Func<QuantizedSequenceClassifier, T> use)
    {
        lock (_sync)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return use(Classifier);
        }
    }

    // ---- ML.NET plumbing ----

    private protected abstract VersionInfo GetVersionInfoCore();

    void ICanSaveModel.Save(ModelSaveContext ctx)
    {
        Host.CheckValue(ctx, nameof(ctx));
        ctx.CheckAtModel();
        ctx.SetVersionInfo(GetVersionInfoCore());
        // *** Binary format ***
        // ulong: key count of the token features (0 for float features)
        // string: features column name
        // stream QuantizedSequenceClassifier.bin: the classifier in the library's checksummed format
        ctx.Writer.Write(KeyCount);
        ctx.SaveNonEmptyString(FeatureColumnName);
        lock (_sync)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            ctx.SaveBinaryStream(ModelStreamName, w =>
            {
                w.Flush();
                Classifier.Save(w.BaseStream);
            });
        }
    }

    /// <summary>Reads what <see cref="ICanSaveModel.Save"/> wrote after the version header.</summary>
    private protected static (QuantizedSequenceClassifier Classifier, ulong KeyCount, string FeatureColumnName) LoadCore(IHost host, ModelLoadContext ctx, string userName)
    {
        ulong keyCount = ctx.Reader.ReadUInt64();
        string feature = ctx.LoadNonEmptyString();
        QuantizedSequenceClassifier? classifier = null;
        try
        {
            if (!ctx.TryLoadBinaryStream(ModelStreamName, r => classifier = QuantizedSequenceClassifier.Load(r.BaseStream)))
                throw host.Except($"The {userName} in this ML.NET model has no '{ModelStreamName}' stream: the file is damaged or was not written by Microsoft.ML.Quantized.");
        }
        catch (ModelFormatException e)
        {
            throw host.Except(e, $"The quantized sequence classifier inside this ML.NET model could not be read: {e.Message}");
        }
        return (classifier!, keyCount, feature);
    }
}
