using Microsoft.ML.Data;
using Microsoft.ML.Model.OnnxConverter;
using Microsoft.ML.Runtime;

namespace Microsoft.ML.Quantized;

/// <summary>
/// The trained model of a quantized sequence-classifier trainer, as ML.NET model parameters: the packed (low-bit)
/// classifier the managed engine scores with, plus what it needs to read the features column (token keys through the
/// trained key map, or float frames). Each cursor and <c>PredictionEngine</c> has its own engine state and the weights
/// are shared and immutable, so they score in parallel without locks. The model binds to the schema itself
/// (<c>ISchemaBindableMapper</c>), so it reads token keys and float sequences of any length and its errors name the row.
/// Saved inside the ML.NET model file as the packed model (and the float training weights only with
/// <c>SequenceClassifierTrainerOptions.KeepTrainingWeights</c>). After Fit, or when loaded with its training
/// weights, it also holds the float training classifier (the training package's <c>GetTrainingClassifier()</c>) that KURE
/// fine-tuning and re-quantization start from; dispose it (or let the garbage collector) to free those tensors. This
/// class is in the scoring runtime (Microsoft.ML.Quantized.Runtime, no libtorch); the trainers are in the training
/// package (Microsoft.ML.Quantized).
/// </summary>
public abstract class SequenceClassifierModelParameters : ICanSaveModel, ISchemaBindableMapper, IBindableCanSaveOnnx, IDisposable
{
    private readonly SequenceClassifierParts _parts;
    private readonly bool _binary;

    /// <summary>
    /// Parameters over <paramref name="parts"/> (which they then own). <paramref name="keys"/> maps token keys to the
    /// classifier's ids (null for float frames); <paramref name="classPrior"/> is the class distribution of the training
    /// labels, the output for a row with no tokens; <paramref name="keepTrainingWeights"/>: saving writes the float
    /// training weights too.
    /// </summary>
    private protected SequenceClassifierModelParameters(IHostEnvironment env, string name, SequenceClassifierParts parts,
        TokenKeyMap? keys, float[] classPrior, string featureColumnName, bool keepTrainingWeights, bool binary)
    {
        _binary = binary;
        Host = Contracts.CheckRef(env, nameof(env)).Register(name);
        Host.CheckValue(parts, nameof(parts));
        Host.CheckValue(classPrior, nameof(classPrior));
        _parts = parts;
        Keys = keys;
        ClassPrior = classPrior;
        FeatureColumnName = featureColumnName;
        KeepTrainingWeights = keepTrainingWeights;
        if ((InputKind == SequenceClassifierInputKind.Tokens) != (keys is not null))
            throw Host.Except($"A classifier of {InputKind} needs {(keys is null ? "a" : "no")} token key map: the model is inconsistent.");
        if (keys is not null && (keys.KeyCount == 0 || keys.Count > parts.Packed.Network.InputSize))
            throw Host.Except($"The key map's {keys.Count} token ids do not fit the classifier's vocabulary of {parts.Packed.Network.InputSize}: the model is inconsistent.");
        if (classPrior.Length != parts.ClassCount)
            throw Host.Except($"The class prior has {classPrior.Length} values for {parts.ClassCount} classes: the model is inconsistent.");
        InputType = keys is not null
            ? new VectorDataViewType(new KeyDataViewType(typeof(uint), keys.KeyCount))
            : new VectorDataViewType(NumberDataViewType.Single);
    }

    private protected IHost Host { get; }

    /// <summary>The environment to build transformers over these parameters with.</summary>
    internal IHostEnvironment Env => Host;

    /// <summary>New parameters of the same kind, columns, key map and prior over <paramref name="parts"/> (which they then own).</summary>
    internal abstract SequenceClassifierModelParameters WithParts(SequenceClassifierParts parts);

    /// <summary>
    /// Whether the float training weights are here (after Fit, or loaded from a model saved with
    /// <c>SequenceClassifierTrainerOptions.KeepTrainingWeights</c>): KURE fine-tuning and re-quantization need them.
    /// Scoring never uses them.
    /// </summary>
    public bool HasTrainingWeights => _parts.HasTrainingWeights;

    /// <summary>Whether saving writes the float training weights too (<c>SequenceClassifierTrainerOptions.KeepTrainingWeights</c>).</summary>
    public bool KeepTrainingWeights { get; }

    /// <summary>The parts these parameters score with (the KURE estimator reads the options from them).</summary>
    internal SequenceClassifierParts Parts => _parts;

    /// <summary>Whether the features column holds token keys or float frames.</summary>
    public SequenceClassifierInputKind InputKind => _parts.InputKind;

    /// <summary>Number of classes.</summary>
    public int ClassCount => _parts.ClassCount;

    /// <summary>Float features: values per time step.</summary>
    public int FrameSize => _parts.Options.FrameSize;

    /// <summary>Token features: the key count of the features column's key type; 0 for float features.</summary>
    public ulong KeyCount => Keys?.KeyCount ?? 0;

    /// <summary>
    /// Token features: what scoring does with a key the model has no token for and with a row with no tokens (see
    /// <c>SequenceClassifierTrainerOptions.UnknownTokens</c>). Models saved before this setting existed report
    /// <see cref="UnknownTokenHandling.Strict"/>.
    /// </summary>
    public UnknownTokenHandling UnknownTokens => Keys?.UnknownTokens ?? UnknownTokenHandling.Strict;

    /// <summary>Token features: the map from keys to the classifier's token ids (null for float features).</summary>
    internal TokenKeyMap? Keys { get; }

    /// <summary>The class distribution of the training labels: the probabilities given to a row with no tokens.</summary>
    internal float[] ClassPrior { get; }

    /// <summary>Training history, one entry per epoch.</summary>
    public IReadOnlyList<EpochSummary> History => _parts.Packed.History;

    /// <summary>Name of the features column trained on (used in error messages).</summary>
    public string FeatureColumnName { get; }

    /// <summary>The features column type the model reads: <c>Vector&lt;Key&lt;UInt32&gt;&gt;</c> of <see cref="KeyCount"/> keys, or <c>Vector&lt;Single&gt;</c>.</summary>
    private protected DataViewType InputType { get; }

    /// <summary>Parameters, bits per quantized weight including scales, packed and float32 bytes.</summary>
    public ModelSizeReport SizeReport() => _parts.Packed.SizeReport();

    /// <summary>
    /// Writes the classifier's scoring graph as an ONNX model, as <see cref="PackedModel.ExportToOnnx(Stream, OnnxExportOptions?)"/>
    /// does for the packed classifier, but reading what this model reads. Token classifiers read <c>keys</c> (int64
    /// [batch, time]): the features column's key values as ML.NET stores them (1..<see cref="KeyCount"/>; 0, missing, for
    /// a word the key mapping was not fitted on), mapped in the graph to the model's tokens, every key the model does not
    /// know to <c>&lt;unk&gt;</c>, and a row of length 0 gets the class prior, as in ML.NET. Frame classifiers read
    /// <c>frames</c>. Both read <c>lengths</c> (int64 [batch], each row's steps; the rest is padding) and output
    /// <c>probabilities</c> (float [batch, classes]; for a binary classifier, index 1 is ML.NET's <c>Probability</c>). A whole ML.NET pipeline (tokenizer and key mapping included) exports with
    /// <c>mlContext.Model.ConvertToOnnx</c> (Microsoft.ML.OnnxConverter) where the cells allow it; see docs/onnx-export.md.
    /// </summary>
    /// <param name="stream">Where to write the ONNX protobuf.</param>
    /// <param name="options">Weight format; null for the defaults (float weights).</param>
    /// <exception cref="InvalidOperationException">A token classifier trained with <c>UnknownTokens = Skip</c> or <c>Strict</c>:
    /// a graph of fixed shape can neither drop a row's tokens nor reject them.</exception>
    public void ExportToOnnx(Stream stream, OnnxExportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        OnnxExport.Write(_parts.Packed.Network, options ?? new OnnxExportOptions(), stream, KeyToTokenTable(), InputKind == SequenceClassifierInputKind.Tokens ? ClassPrior : null);
    }

    /// <summary>The ONNX lookup table from key values to token ids (null for frames); refuses maps that drop or reject keys.</summary>
    private long[]? KeyToTokenTable() => Keys?.OnnxTokenIdTable("classifier");

    bool ICanSaveOnnx.CanSaveOnnx(OnnxContext ctx) => true;

    /// <summary>
    /// <c>mlContext.Model.ConvertToOnnx</c>: adds the classifier to ML.NET's ONNX graph (<see cref="OnnxContextExport"/>: opset
    /// 11 forms, float weights, ONNX LSTM/GRU nodes) reading the features column's variable, one row per sequence (every
    /// step read; a row of no tokens gets the class prior), and writing the scorer's columns: binary <c>Score</c> (log-odds) and <c>Probability</c> (ML.NET's
    /// scorer adds <c>PredictedLabel</c>); multiclass <c>PredictedLabel</c> (the most probable class's key) and <c>Score</c>.
    /// </summary>
    /// <exception cref="InvalidOperationException">A layer the ONNX LSTM/GRU operators cannot express (it would need a
    /// <c>Scan</c> subgraph, which the converter cannot hold), or keys that are skipped or rejected.</exception>
    bool IBindableCanSaveOnnx.SaveAsOnnx(OnnxContext ctx, RoleMappedSchema schema, string[] outputNames)
    {
        Host.CheckValue(ctx, nameof(ctx));
        Host.CheckValue(outputNames, nameof(outputNames));
        var feature = CheckFeature(schema);
        if (!ctx.ContainsColumn(feature.Name)) return false;
        ctx.CheckOpSetVersion(OnnxContextExport.Opset, "quantized sequence classifier");
        var network = _parts.Packed.Network;
        OnnxContextExport.CheckOperatorCells(network.Recurrent, "classifier", "its model parameters' ExportToOnnx");
        var table = KeyToTokenTable();
        var graph = new OnnxGraph(OnnxContextExport.Opset);
        graph.AddInput("features", InputKind == SequenceClassifierInputKind.Tokens ? OnnxGraph.Int64Type : OnnxGraph.FloatType);
        // One ML.NET row per ONNX row (ML.NET's tokenizer export reshapes to one row), every step read. The graph never takes
        // the Shape of the features: ML.NET declares a variable-length vector as [batch, 1], and ONNX Runtime folds a Shape
        // of it to that constant. Lengths and masks come from the values instead.
        string probabilities;
        if (table is null)
        {
            var frames = graph.AddNode("Reshape", ["features", graph.AddInt64("frames_shape", [0, -1, FrameSize], 3)], ["frames"]);
            probabilities = OnnxExport.Classifier(graph, network, quantized: false, frames, lengths: "");
        }
        else
        {
            // A row of no tokens gets the class prior, as in ML.NET. So that no layer reads 0 steps, every row gets one more
            // key (0, <unk>) that its length leaves out.
            // (Pad, not a reduction: ONNX Runtime reduces an empty axis to an empty tensor.)
            var keys = graph.AddNode("Cast", ["features"], ["keys"], OnnxAttribute.Int("to", OnnxGraph.Int64Type));
            var padded = graph.AddNode("Pad", [keys, graph.AddInt64("pad_one_key", [0, 0, 0, 1], 4), graph.AddInt64("pad_key", [0])], ["padded_keys"]);
            var one = graph.AddInt64("one", [1], 1);
            var ones = graph.AddNode("Add", [graph.AddNode("Mul", [padded, graph.AddInt64("zero", [0], 1)], ["padded_zeros"]), one], ["step_ones"]);
            var lengths = graph.AddNode("Sub", [graph.ReduceSum(ones, 1, "steps"), one], ["lengths"]);
            // Step t of a row is read when t < length: [time + 1, batch, 1].
            var positions = graph.AddNode("Sub", [graph.AddNode("CumSum", [ones, graph.AddInt64("time_axis", [1])], ["step_counts"]), one], ["positions"]);
            var read = graph.AddNode("Less", [positions, graph.Unsqueeze(lengths, 1, "lengths_column")], ["step_read"]);
            var mask = graph.Unsqueeze(graph.AddNode("Transpose", [read], ["step_read_time_major"], OnnxAttribute.Ints("perm", 1, 0)), 2, "step_mask");
            var tokens = OnnxExport.KeysToTokens(graph, padded, table);
            probabilities = OnnxExport.ForEmptyRows(graph, OnnxExport.Classifier(graph, network, quantized: false, tokens, lengths, mask), lengths, ClassPrior);
        }
        string[] outputs;
        if (_binary)
        {
            string Class(int c) => graph.AddNode("Log",
                [graph.AddNode("Max", [graph.AddNode("Slice", [probabilities, graph.AddInt64($"class{c}_start", [c], 1), graph.AddInt64($"class{c}_end", [c + 1], 1), graph.AddInt64($"class{c}_axis", [1], 1)], [$"p{c}"]),
                 graph.AddScalar($"p{c}_floor", SequenceClassifierBinaryModelParameters.MinProbability)], [$"p{c}_floored"])], [$"log_p{c}"]);
            graph.AddNode("Sub", [Class(1), Class(0)], ["score"]);
            graph.AddNode("Identity", ["p1"], ["probability"]);
            outputs = [outputNames[1], outputNames[2]];
            graph.AddOutput("score", OnnxGraph.FloatType);
            graph.AddOutput("probability", OnnxGraph.FloatType);
        }
        else
        {
            // The key is [rows] until its last step, an Unsqueeze (which ONNX Runtime runs in place). ONNX Runtime's memory plan
            // put a [rows, 1] ArgMax output into the freed buffer of a tensor of the row's keys, [1, 0] for an empty text
            // ("Shape mismatch attempting to re-use buffer"), in every session mode.
            var index = graph.AddNode("ArgMax", [probabilities], ["class_index"], OnnxAttribute.Int("axis", 1), OnnxAttribute.Int("keepdims", 0));
            var key = graph.AddNode("Add", [index, graph.AddInt64("first_key", [1], 1)], ["class_key"]);
            graph.Unsqueeze(graph.AddNode("Cast", [key], ["class_key_uint32"], OnnxAttribute.Int("to", OnnxGraph.UInt32Type)), 1, "predicted_label");
            graph.AddNode("Identity", [probabilities], ["score"]);
            outputs = [outputNames[0], outputNames[1]];
            graph.AddOutput("predicted_label", OnnxGraph.UInt32Type);
            graph.AddOutput("score", OnnxGraph.FloatType);
        }
        OnnxContextExport.CopyTo(graph, ctx, ctx.GetNodeName("QuantizedSequenceClassifier"), [ctx.GetVariableName(feature.Name)], outputs);
        return true;
    }

    /// <summary>Frees the tensors of the float training classifier, if there is one.</summary>
    public void Dispose()
    {
        _parts.Dispose();
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
                Predict(new SequenceClassifierScorer(_parts.Packed.Network), SequenceClassifierFeatureColumn.Tokens(Host, src, Keys!, FeatureColumnName, null));
            return (RowScorer<TSrc>)(Delegate)tokens;
        }
        Host.Check(typeof(TSrc) == typeof(VBuffer<float>), $"The features of this model are {InputType}, read as VBuffer<float>, not {typeof(TSrc).Name}.");
        RowScorer<VBuffer<float>> frames = (in VBuffer<float> src) =>
            Predict(new SequenceClassifierScorer(_parts.Packed.Network), SequenceClassifierFeatureColumn.Frames(Host, src, FrameSize, FeatureColumnName, null));
        return (RowScorer<TSrc>)(Delegate)frames;
    }

    /// <summary>
    /// A scorer of the current row of <paramref name="input"/>: reads <paramref name="feature"/> and returns the class
    /// probabilities; errors name the column, the row and the value. One per cursor (reuses buffers).
    /// </summary>
    internal Func<float[]> CreateRowScorer(DataViewRow input, DataViewSchema.Column feature)
    {
        var engine = new SequenceClassifierScorer(_parts.Packed.Network);
        if (InputKind == SequenceClassifierInputKind.Tokens)
        {
            var getter = input.GetGetter<VBuffer<uint>>(feature);
            VBuffer<uint> keys = default;
            return () =>
            {
                getter(ref keys);
                return Predict(engine, SequenceClassifierFeatureColumn.Tokens(Host, keys, Keys!, feature.Name, input.Position));
            };
        }
        var frameGetter = input.GetGetter<VBuffer<float>>(feature);
        VBuffer<float> values = default;
        return () =>
        {
            frameGetter(ref values);
            return Predict(engine, SequenceClassifierFeatureColumn.Frames(Host, values, FrameSize, feature.Name, input.Position));
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

    private float[] Predict(SequenceClassifierScorer engine, int[] ids)
    {
        if (ids.Length == 0) return (float[])ClassPrior.Clone();
        var probabilities = new float[ClassCount];
        engine.Predict(ids, probabilities);
        return probabilities;
    }

    private float[] Predict(SequenceClassifierScorer engine, float[] frames)
    {
        var probabilities = new float[ClassCount];
        engine.Predict(frames, probabilities);
        return probabilities;
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
        // token features: the token key map (ulong key count, int n, n keys as 7-bit-encoded gaps, byte unknown-token handling;
        //   before 0x00010004 the keys were ulong[n])
        // int classes, float[classes]: the class prior
        //   (format 0x00010001 had neither the map, its keys being 1..key count, strict, nor the prior)
        // byte: keep training weights (from 0x00010003)
        // stream SequenceClassifier.json: options, history, size (from 0x00010003)
        // stream PackedSequenceClassifier.bin: the packed classifier (PackedSequenceClassifierNetwork's checksummed format; from 0x00010003)
        // stream QuantizedSequenceClassifier.bin: the torch classifier in the library's checksummed format (the only model
        //   stream before 0x00010003; from then on only with keep training weights)
        ctx.Writer.Write(KeyCount);
        ctx.SaveNonEmptyString(FeatureColumnName);
        Keys?.Save(ctx.Writer);
        ctx.Writer.Write(ClassPrior.Length);
        foreach (float p in ClassPrior) ctx.Writer.Write(p);
        ctx.Writer.Write(KeepTrainingWeights);
        _parts.Save(ctx, KeepTrainingWeights);
    }

    /// <summary>The version of the binary format, shared by the binary and multiclass parameters.</summary>
    private protected const uint FormatVersion = 0x00010004; // the token key map's keys as gaps

    /// <summary>The format that stored packed weights scored by the managed engine, float training weights optional.</summary>
    private const uint PackedFormat = 0x00010003;

    /// <summary>The format that added the token key map and the class prior (<c>&lt;unk&gt;</c>).</summary>
    private const uint UnknownTokenFormat = 0x00010002;

    /// <summary>The first version of the binary format (keys 1..key count as ids 0.., strict, no prior).</summary>
    private protected const uint FirstFormatVersion = 0x00010001;

    /// <summary>Reads what <see cref="ICanSaveModel.Save"/> wrote after the version header.</summary>
    private protected static (SequenceClassifierParts Parts, TokenKeyMap? Keys, float[] ClassPrior, string FeatureColumnName, bool KeepTrainingWeights) LoadCore(IHost host, ModelLoadContext ctx, string userName)
    {
        ulong keyCount = ctx.Reader.ReadUInt64();
        string feature = ctx.LoadNonEmptyString();
        TokenKeyMap? keys = null;
        float[]? prior = null;
        try
        {
            if (ctx.Header.ModelVerWritten < UnknownTokenFormat)
            {
                if (keyCount > 0) keys = new TokenKeyMap(keyCount, Enumerable.Range(1, checked((int)keyCount)).Select(k => (ulong)k).ToArray(), UnknownTokenHandling.Strict);
            }
            else
            {
                if (keyCount > 0) keys = TokenKeyMap.Load(ctx.Reader, gapEncoded: ctx.Header.ModelVerWritten >= FormatVersion);
                if (keys is not null && keys.KeyCount != keyCount) throw new ModelFormatException($"the token key map is for {keys.KeyCount} keys, the features column for {keyCount}.");
                int classes = ctx.Reader.ReadInt32();
                if (classes < 2 || classes > 1 << 20) throw new ModelFormatException($"the class prior has {classes} classes.");
                prior = new float[classes];
                for (int c = 0; c < classes; c++) prior[c] = ctx.Reader.ReadSingle();
            }
        }
        catch (Exception e) when (e is ModelFormatException or EndOfStreamException or OverflowException)
        {
            throw host.Except(e, $"The {userName} in this ML.NET model is damaged: {e.Message}");
        }
        bool packedFormat = ctx.Header.ModelVerWritten >= PackedFormat;
        bool keep = !packedFormat || ctx.Reader.ReadBoolean();
        SequenceClassifierParts parts;
        try
        {
            parts = SequenceClassifierParts.Load(ctx, trainingStreamOnly: !packedFormat);
        }
        catch (ModelFormatException e)
        {
            throw host.Except(e, $"The quantized sequence classifier inside this ML.NET model could not be read: {e.Message}");
        }
        return (parts, keys, prior ?? UniformPrior(parts.ClassCount), feature, keep);
    }

    /// <summary>The prior of a first-format model, which stored none (it never scores an empty row: it is strict).</summary>
    private static float[] UniformPrior(int classes) => Enumerable.Repeat(1f / classes, classes).ToArray();

    /// <summary>The class distribution of <paramref name="labels"/> (class indices in [0, <paramref name="classes"/>)).</summary>
    internal static float[] PriorOf(IReadOnlyList<int> labels, int classes)
    {
        var prior = new float[classes];
        foreach (int label in labels) prior[label]++;
        for (int c = 0; c < classes; c++) prior[c] /= Math.Max(1, labels.Count);
        return prior;
    }

    internal const string NoTrainingWeightsMessage =
        "This sequence classifier was saved without its float training weights, so it can score but not be fine-tuned or re-quantized. " +
        "Train with SequenceClassifierTrainerOptions.KeepTrainingWeights = true, or fine-tune the model Fit returns, before saving.";
}
