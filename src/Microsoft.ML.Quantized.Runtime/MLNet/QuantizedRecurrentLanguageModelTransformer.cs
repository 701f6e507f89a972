using System.Text;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Model.OnnxConverter;
using Microsoft.ML.Quantized;
using Microsoft.ML.Runtime;

[assembly: LoadableClass(QuantizedRecurrentLanguageModelTransformer.Summary, typeof(QuantizedRecurrentLanguageModelTransformer), null,
    typeof(SignatureLoadModel), QuantizedRecurrentLanguageModelTransformer.UserName, QuantizedRecurrentLanguageModelTransformer.LoaderSignature)]

namespace Microsoft.ML.Quantized;

/// <summary>
/// A trained quantized recurrent (LSTM or GRU) language model over a token-key column, as an ML.NET transformer.
/// It adds two columns: the output column, a <see cref="float"/> vector of the model's hidden size holding the last
/// layer's final hidden state after reading <c>&lt;eos&gt;</c> and then the row's tokens from a zero state (features
/// for any downstream ML.NET trainer), and the perplexity column, a <see cref="float"/> holding exp of the mean
/// cross-entropy of predicting each of the row's tokens from the tokens before it (the first from <c>&lt;eos&gt;</c>
/// alone): low on text like the training data, high on unusual text, so usable as an anomaly score.
/// </summary>
/// <remarks>
/// Transform is lazy and streams: each cursor reads one row at a time with reused buffers, and the two columns of a
/// row share one pass of the managed scoring engine over the packed (low-bit) weights. Each cursor and
/// <c>PredictionEngine</c> has its own engine state and the weights are shared and immutable, so they score in parallel
/// without locks. Save it with <c>mlContext.Model.Save</c>: the model file holds the packed weights (and the float
/// training weights only with <c>QuantizedRecurrentLanguageModelOptions.KeepTrainingWeights</c>). After Fit, or
/// when loaded with its training weights, it also holds the float training model (the training package's
/// <c>GetTrainingModel()</c>) that KURE fine-tuning and re-quantization start from; dispose the transformer (or let the
/// garbage collector) to free those tensors. This class is in the scoring runtime (Microsoft.ML.Quantized.Runtime, no
/// libtorch); training, fine-tuning and re-quantization are in the training package (Microsoft.ML.Quantized).
/// </remarks>
public sealed class QuantizedRecurrentLanguageModelTransformer : RowToRowTransformerBase, IDisposable
{
    internal const string Summary = "A quantized recurrent language model over a token-key column: final hidden state features and per-row perplexity.";
    internal const string UserName = "Quantized Recurrent Language Model Transformer";
    internal const string LoaderSignature = "QuantRnnLmTransformer";
    private const uint FirstFormat = 0x00010001, UnknownTokenFormat = 0x00010002, PackedFormat = 0x00010003, GapEncodedKeysFormat = 0x00010004;

    private readonly LanguageModelParts _parts;
    private readonly TokenKeyMap _keys;
    private readonly Dictionary<string, int> _idByName;
    private readonly bool? _allowEmptyRowsOfFirstFormat;

    /// <summary>
    /// A transformer over <paramref name="parts"/> (which it then owns). <paramref name="keepTrainingWeights"/>: saving
    /// writes the float training weights too. <paramref name="allowEmptyRowsOfFirstFormat"/>: for a model of the first
    /// format, which stored whether empty rows were allowed; null (newer models) allows them unless <paramref name="keys"/> is strict.
    /// </summary>
    internal QuantizedRecurrentLanguageModelTransformer(IHostEnvironment env, LanguageModelParts parts, TokenKeyMap keys,
        string outputColumnName, string inputColumnName, string perplexityColumnName, bool keepTrainingWeights, bool? allowEmptyRowsOfFirstFormat = null)
        : base(Contracts.CheckRef(env, nameof(env)).Register(nameof(QuantizedRecurrentLanguageModelTransformer)))
    {
        Host.CheckValue(parts, nameof(parts));
        Host.CheckNonEmpty(outputColumnName, nameof(outputColumnName));
        Host.CheckNonEmpty(inputColumnName, nameof(inputColumnName));
        Host.CheckNonEmpty(perplexityColumnName, nameof(perplexityColumnName));
        if (parts.Vocabulary.Count != keys.VocabularySize)
            throw Host.Except($"The language model has {parts.Vocabulary.Count} tokens but the key map {keys.VocabularySize}: the model file is inconsistent.");
        _parts = parts;
        KeepTrainingWeights = keepTrainingWeights;
        _keys = keys;
        OutputColumnName = outputColumnName;
        InputColumnName = inputColumnName;
        PerplexityColumnName = perplexityColumnName;
        _allowEmptyRowsOfFirstFormat = allowEmptyRowsOfFirstFormat;
        HiddenSize = parts.Options.Recurrent.HiddenSize;
        Cell = parts.Options.Recurrent.Cell;
        _idByName = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < parts.Vocabulary.Count; i++) _idByName[parts.Vocabulary.Tokens[i]] = i;
    }

    /// <summary>The token-key column read.</summary>
    public string InputColumnName { get; }

    /// <summary>The hidden-state feature column added (a <see cref="float"/> vector of <see cref="HiddenSize"/>).</summary>
    public string OutputColumnName { get; }

    /// <summary>The per-row perplexity column added (a <see cref="float"/>).</summary>
    public string PerplexityColumnName { get; }

    /// <summary>Width of the feature column: the model's hidden size.</summary>
    public int HiddenSize { get; }

    /// <summary>LSTM or GRU.</summary>
    public RecurrentCellKind Cell { get; }

    /// <summary>
    /// What scoring does with a key the model has no token for and with an empty row (see
    /// <c>QuantizedRecurrentLanguageModelOptions.UnknownTokens</c>). Models saved before this setting existed
    /// report <see cref="UnknownTokenHandling.Skip"/> if they were trained to skip unknown keys, else <see cref="UnknownTokenHandling.Strict"/>.
    /// </summary>
    public UnknownTokenHandling UnknownTokens => _keys.UnknownTokens;

    /// <summary>
    /// Whether the float training weights are here (after Fit, or loaded from a model saved with
    /// <c>QuantizedRecurrentLanguageModelOptions.KeepTrainingWeights</c>): KURE fine-tuning and re-quantization need them.
    /// Scoring never uses them.
    /// </summary>
    public bool HasTrainingWeights => _parts.HasTrainingWeights;

    /// <summary>Whether saving writes the float training weights too (<c>QuantizedRecurrentLanguageModelOptions.KeepTrainingWeights</c>).</summary>
    public bool KeepTrainingWeights { get; }

    /// <summary>The tokens: the names of the known keys, <c>&lt;unk&gt;</c> when <see cref="UnknownTokens"/> maps to one, and <c>&lt;eos&gt;</c>.</summary>
    public Vocabulary Vocabulary => _parts.Vocabulary;

    /// <summary>Training history, one entry per epoch.</summary>
    public IReadOnlyList<EpochSummary> History => _parts.Packed.History;

    /// <summary>The keys of the input column the model knows (seen in training often enough), in token-id order; any other key is <c>&lt;unk&gt;</c> (see <see cref="UnknownTokens"/>).</summary>
    public IReadOnlyList<ulong> KnownKeys => _keys.Keys;

    /// <summary>Parameters, bits per quantized weight including scales, packed and float32 bytes.</summary>
    public ModelSizeReport SizeReport() => _parts.Packed.SizeReport();

    /// <summary>
    /// Cross-entropy, perplexity and bits per token over the token column of <paramref name="data"/>: every row is
    /// read after <c>&lt;eos&gt;</c> from a zero state (as the perplexity column does) and each of its tokens is
    /// predicted; the mean is over all tokens of all rows. Streams the data.
    /// </summary>
    public LanguageModelEvaluation Evaluate(IDataView data)
    {
        Host.CheckValue(data, nameof(data));
        var column = TokenKeyColumn.Check(Host, data.Schema, InputColumnName, _keys.KeyCount);
        using var cursor = data.GetRowCursor(new[] { column });
        var scorer = new RowScorer(this, cursor, column);
        // Rows are scored by the packed model's engine, like Transform.
        double total = 0;
        long count = 0;
        while (cursor.MoveNext())
        {
            var (sum, n) = scorer.CrossEntropy();
            total += sum;
            count += n;
        }
        if (count == 0) throw Host.Except($"Column '{InputColumnName}' of the evaluation data holds no tokens to predict.");
        return new LanguageModelEvaluation(total / count, count);
    }

    /// <summary>
    /// Continues a prompt of keys of the input column with up to <paramref name="length"/> sampled keys; generation
    /// stops early when the model predicts the end of the row. Temperature 1 samples the model's distribution,
    /// lower is more conservative, 0 takes the most likely token. The same seed gives the same keys. Prompt keys the
    /// model does not know are treated as <see cref="UnknownTokens"/> says; a sampled <c>&lt;unk&gt;</c> is key 0 (missing).
    /// </summary>
    public uint[] Generate(IEnumerable<uint> promptKeys, int length, double temperature = 1.0, int seed = 0)
    {
        Host.CheckValue(promptKeys, nameof(promptKeys));
        var context = new List<int> { _keys.EndOfSequenceId };
        _keys.AppendRow(Host, promptKeys.Select(k => (ulong)k).ToArray(), context, InputColumnName, null, "prompt");
        return GenerateIds(context, length, temperature, seed).Select(id => checked((uint)_keys.KeyOf(id))).ToArray();
    }

    /// <summary>
    /// Continues a text prompt: split into words at whitespace (word models) or into characters (character models,
    /// whose key names are single characters), matched to the key names; returns the continuation as text (words
    /// joined by spaces, or characters). Stops early at the end of a row. Words the model does not know are treated as
    /// <see cref="UnknownTokens"/> says (a sampled <c>&lt;unk&gt;</c> appears as <c>&lt;unk&gt;</c>).
    /// </summary>
    public string Generate(string prompt, int length, double temperature = 1.0, int seed = 0)
    {
        Host.CheckValue(prompt, nameof(prompt));
        bool characters = Vocabulary.IsCharacterLevel;
        var context = new List<int> { _keys.EndOfSequenceId };
        var pieces = characters ? prompt.Select(c => TokenText.CharacterName(c)) : prompt.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        foreach (var piece in pieces)
        {
            if (_idByName.TryGetValue(piece, out int id) && id < _keys.Keys.Length) context.Add(id);
            else if (_keys.HasUnknown) context.Add(_keys.UnknownId);
            else if (_keys.UnknownTokens == UnknownTokenHandling.Strict)
                throw Host.ExceptParam(nameof(prompt), $"The prompt's {(characters ? "character" : "word")} '{piece}' is not a token the model was trained on (column '{InputColumnName}'), and the model was trained with UnknownTokens = Strict.");
        }
        var ids = GenerateIds(context, length, temperature, seed);
        var sb = new StringBuilder();
        foreach (var id in ids)
        {
            var name = Vocabulary.Tokens[id];
            if (characters) sb.Append(TokenText.CharacterOf(name));
            else
            {
                if (sb.Length > 0) sb.Append(' ');
                sb.Append(name);
            }
        }
        return sb.ToString();
    }

    private List<int> GenerateIds(List<int> context, int length, double temperature, int seed)
    {
        if (length < 0) throw Host.ExceptParam(nameof(length), $"length must be zero or positive; got {length}.");
        if (!(temperature >= 0) || double.IsInfinity(temperature)) throw Host.ExceptParam(nameof(temperature), $"temperature must be a finite number >= 0; got {temperature}.");
        CheckNotDisposed();
        return LanguageModelSampling.Generate(new LanguageModelScorer(_parts.Packed.Network), context, length, temperature, seed, _keys.EndOfSequenceId);
    }

    /// <summary>
    /// Writes the transformer's scoring graph as an ONNX model (standard domain, opset <see cref="OnnxExportOptions.Opset"/>)
    /// with the transformer's columns as outputs: <see cref="OutputColumnName"/> (float [batch, <see cref="HiddenSize"/>], the
    /// last layer's state after <c>&lt;eos&gt;</c> and the row's tokens) and <see cref="PerplexityColumnName"/> (float
    /// [batch]; NaN for a row without tokens). Inputs: <c>keys</c> (int64 [batch, time]), the input column's key values as
    /// ML.NET stores them (0, missing, for a word the key mapping was not fitted on), mapped in the graph to the model's
    /// tokens, every key the model does not know to <c>&lt;unk&gt;</c>; and <c>lengths</c> (int64 [batch], each row's
    /// tokens; the rest of the row is padding). Weights as <see cref="OnnxExportOptions.WeightFormat"/> says (default float);
    /// <see cref="OnnxExportOptions.LogProbabilities"/> does not apply. See docs/onnx-export.md.
    /// </summary>
    /// <param name="stream">Where to write the ONNX protobuf.</param>
    /// <param name="options">Weight format; null for the defaults (float weights).</param>
    /// <exception cref="InvalidOperationException">The model was trained with <c>UnknownTokens = Skip</c> or <c>Strict</c>:
    /// a graph of fixed shape can neither drop a row's tokens nor reject them.</exception>
    public void ExportToOnnx(Stream stream, OnnxExportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        OnnxExport.WriteTransformer(_parts.Packed.Network, options ?? new OnnxExportOptions(), stream, _keys.OnnxTokenIdTable("language model"),
            _keys.EndOfSequenceId, OutputColumnName, PerplexityColumnName);
    }

    /// <summary>Frees the tensors of the float training model, if there is one.</summary>
    public void Dispose() => _parts.Dispose();

    private void CheckNotDisposed() => ObjectDisposedException.ThrowIf(_parts.IsDisposed, this);

    /// <summary>The key map of the input column (KURE fine-tuning reads data with it).</summary>
    internal TokenKeyMap Keys => _keys;

    /// <summary>Whether a row with no tokens scores (state after the separator, perplexity NaN) rather than failing.</summary>
    internal bool AllowsEmptyRows => _allowEmptyRowsOfFirstFormat ?? _keys.UnknownTokens != UnknownTokenHandling.Strict;

    /// <summary>This transformer's host, for errors raised on its behalf.</summary>
    internal IHost HostForErrors => Host;

    /// <summary>The model this transformer scores with and its training weights.</summary>
    internal LanguageModelParts Parts => _parts;

    /// <summary>A transformer with these columns, settings and key map around <paramref name="parts"/> (which it then owns).</summary>
    internal QuantizedRecurrentLanguageModelTransformer WithParts(LanguageModelParts parts, IHostEnvironment? env = null) =>
        new(env ?? Host, parts, _keys, OutputColumnName, InputColumnName, PerplexityColumnName, KeepTrainingWeights, _allowEmptyRowsOfFirstFormat);

    internal const string NoTrainingWeightsMessage =
        "This language model was saved without its float training weights, so it can score but not be fine-tuned or re-quantized. " +
        "Train with QuantizedRecurrentLanguageModelOptions.KeepTrainingWeights = true, or fine-tune the transformer Fit returns, before saving.";

    /// <summary>
    /// <c>mlContext.Model.ConvertToOnnx</c>: adds the model to ML.NET's ONNX graph (<see cref="OnnxContextExport"/>: opset 11
    /// forms, float weights, ONNX LSTM/GRU nodes), reading the input column's variable one row per sequence (every token
    /// read) and writing the feature column [rows, hidden] and the perplexity column [rows, 1]. The graph's shapes come
    /// from the values: ML.NET declares a variable-length vector as [rows, 1], so a Reshape to a shape computed from the
    /// values stops ONNX Runtime from folding later <c>Shape</c>s to that.
    /// </summary>
    /// <exception cref="InvalidOperationException">A layer the ONNX LSTM/GRU operators cannot express, or keys that are skipped or rejected.</exception>
    private void SaveAsOnnx(OnnxContext ctx)
    {
        if (!ctx.ContainsColumn(InputColumnName))
        {
            ctx.RemoveColumn(OutputColumnName, false);
            ctx.RemoveColumn(PerplexityColumnName, false);
            return;
        }
        ctx.CheckOpSetVersion(OnnxContextExport.Opset, "quantized recurrent language model");
        var network = _parts.Packed.Network;
        OnnxContextExport.CheckOperatorCells(network.Recurrent, "language model", "the transformer's ExportToOnnx");
        var table = _keys.OnnxTokenIdTable("language model");
        var graph = new OnnxGraph(OnnxContextExport.Opset);
        graph.AddInput("input_keys", OnnxGraph.Int64Type);
        var keys = graph.AddNode("Cast", ["input_keys"], ["keys"], OnnxAttribute.Int("to", OnnxGraph.Int64Type));
        var padded = OnnxExport.WithEndOfSequence(graph, OnnxExport.KeysToTokens(graph, keys, table), _keys.EndOfSequenceId);
        var steps = graph.ReduceSum(graph.AddNode("Add", [graph.AddNode("Mul", [padded, graph.AddInt64("times_zero", [0], 1)], ["padded_zeros"]), graph.AddInt64("one_step", [1], 1)], ["step_ones"]), 1, "row_steps");
        var shape = graph.AddNode("Concat", [graph.AddInt64("any_rows", [-1], 1), graph.AddNode("Slice", [steps, graph.AddInt64("first_row", [0], 1), graph.AddInt64("first_row_end", [1], 1)], ["time_steps"])],
            ["ids_shape"], OnnxAttribute.Int("axis", 0));
        var ids = graph.AddNode("Reshape", [padded, shape], ["row_ids"]);
        var lengths = graph.AddNode("Sub", [steps, graph.AddInt64("eos_step", [1], 1)], ["lengths"]);
        var (features, perplexity) = OnnxExport.LanguageModelColumns(graph, network, quantized: false, ids, lengths);
        graph.AddNode("Identity", [features], ["features_column"]);
        graph.Unsqueeze(perplexity, 1, "perplexity_column");
        graph.AddOutput("features_column", OnnxGraph.FloatType);
        graph.AddOutput("perplexity_column", OnnxGraph.FloatType);
        OnnxContextExport.CopyTo(graph, ctx, ctx.GetNodeName("QuantizedLanguageModel"), [ctx.GetVariableName(InputColumnName)],
            [ctx.AddIntermediateVariable(new VectorDataViewType(NumberDataViewType.Single, HiddenSize), OutputColumnName),
             ctx.AddIntermediateVariable(NumberDataViewType.Single, PerplexityColumnName)]);
    }

    // ---- ML.NET plumbing ----

    private static VersionInfo GetVersionInfo() => new(
        modelSignature: "QRNNLMTF",
        verWrittenCur: GapEncodedKeysFormat, // the token key map's keys as gaps; from PackedFormat, packed weights scored by the managed engine, float training weights optional
        verReadableCur: GapEncodedKeysFormat,
        verWeCanReadBack: FirstFormat, // then UnknownTokenFormat: the key map ends with its unknown-token handling
        loaderSignature: LoaderSignature,
        loaderAssemblyName: typeof(QuantizedRecurrentLanguageModelTransformer).Assembly.FullName,
        loaderSignatureAlt: null);

    /// <summary>Writes the transformer into an ML.NET model file.</summary>
    protected override void SaveModel(ModelSaveContext ctx)
    {
        Host.CheckValue(ctx, nameof(ctx));
        ctx.CheckAtModel();
        ctx.SetVersionInfo(GetVersionInfo());
        // *** Binary format ***
        // string: input column, output column, perplexity column
        // token key map: ulong key count, int n, n keys as 7-bit-encoded gaps (ulong[n] before 0x00010004), byte unknown-token handling
        //   (format 0x00010001: two bytes, skip unknown keys and allow empty sequences, before a map without the handling byte;
        //   a model loaded from it is saved in the current format, where empty rows follow the handling)
        // byte: keep training weights (from 0x00010003)
        // stream LanguageModel.json: options, tokens, history, size (from 0x00010003)
        // stream PackedLanguageModel.bin: the packed model (PackedLanguageModelNetwork's checksummed format; from 0x00010003)
        // stream QuantizedLanguageModel.bin: the torch model in the library's checksummed format (the only model stream
        //   before 0x00010003; from then on only with keep training weights)
        ctx.SaveNonEmptyString(InputColumnName);
        ctx.SaveNonEmptyString(OutputColumnName);
        ctx.SaveNonEmptyString(PerplexityColumnName);
        _keys.Save(ctx.Writer);
        ctx.Writer.Write(KeepTrainingWeights);
        _parts.Save(ctx, KeepTrainingWeights);
    }

    // Factory method for SignatureLoadModel.
    private static QuantizedRecurrentLanguageModelTransformer Create(IHostEnvironment env, ModelLoadContext ctx)
    {
        Contracts.CheckValue(env, nameof(env));
        var host = env.Register(nameof(QuantizedRecurrentLanguageModelTransformer));
        host.CheckValue(ctx, nameof(ctx));
        ComponentVersion.CheckAtModel(host, ctx, GetVersionInfo(), UserName);
        var input = ctx.LoadNonEmptyString();
        var output = ctx.LoadNonEmptyString();
        var perplexity = ctx.LoadNonEmptyString();
        uint format = ctx.Header.ModelVerWritten;
        bool firstFormat = format < UnknownTokenFormat;
        bool? allowEmpty = null;
        TokenKeyMap keys;
        try
        {
            if (firstFormat)
            {
                bool skip = ctx.Reader.ReadBoolean();
                allowEmpty = ctx.Reader.ReadBoolean();
                keys = TokenKeyMap.Load(ctx.Reader, gapEncoded: false, skip ? UnknownTokenHandling.Skip : UnknownTokenHandling.Strict);
            }
            else keys = TokenKeyMap.Load(ctx.Reader, gapEncoded: format >= GapEncodedKeysFormat);
        }
        catch (Exception e) when (e is ModelFormatException or EndOfStreamException)
        {
            throw host.Except(e, $"The {UserName} in this ML.NET model is damaged: {e.Message}");
        }
        bool keepTrainingWeights = format >= PackedFormat ? ctx.Reader.ReadBoolean() : true;
        LanguageModelParts parts;
        try
        {
            parts = LanguageModelParts.Load(ctx, trainingStreamOnly: format < PackedFormat);
        }
        catch (ModelFormatException e)
        {
            throw host.Except(e, $"The quantized language model inside this ML.NET model could not be read: {e.Message}");
        }
        return new QuantizedRecurrentLanguageModelTransformer(host, parts, keys, output, input, perplexity, keepTrainingWeights, allowEmpty);
    }

    /// <summary>Makes the row mapper for <paramref name="schema"/>.</summary>
    protected override IRowMapper MakeRowMapper(DataViewSchema schema) => new Mapper(this, schema);

    /// <summary>One cursor's reader and scorer: reused buffers, one forward pass per row for both columns.</summary>
    private sealed class RowScorer
    {
        private readonly QuantizedRecurrentLanguageModelTransformer _parent;
        private readonly DataViewRow _row;
        private readonly KeyReader _reader;
        private readonly List<int> _ids = new();
        private readonly LanguageModelScorer _engine;
        private int[] _scored = [];
        private bool _hasScore;
        private readonly float[] _hidden;
        private double _crossEntropySum;
        private int _count;

        public RowScorer(QuantizedRecurrentLanguageModelTransformer parent, DataViewRow row, DataViewSchema.Column column)
        {
            _parent = parent;
            _row = row;
            _reader = TokenKeyColumn.CreateReader(row, column);
            _hidden = new float[parent.HiddenSize];
            _engine = new LanguageModelScorer(parent._parts.Packed.Network);
        }

        /// <summary>Reads the current row and runs the model unless the same tokens were just scored.</summary>
        private void Ensure()
        {
            var keys = _reader.Read();
            _ids.Clear();
            _ids.Add(_parent._keys.EndOfSequenceId);
            int n = _parent._keys.AppendRow(_parent.Host, keys, _ids, _parent.InputColumnName, _row.Position);
            if (n == 0 && !_parent.AllowsEmptyRows)
                throw _parent.Host.Except(EmptyRowMessage(_parent.InputColumnName, _row.Position, keys.Length));
            if (_hasScore && _scored.Length == _ids.Count && SameAsScored()) return;
            _scored = _ids.ToArray();
            _hasScore = false;
            (_crossEntropySum, _count) = _engine.Score(_scored, _hidden);
            _hasScore = true;
        }

        private bool SameAsScored()
        {
            for (int i = 0; i < _scored.Length; i++)
                if (_scored[i] != _ids[i]) return false;
            return true;
        }

        public (double Sum, int Count) CrossEntropy()
        {
            Ensure();
            return (_crossEntropySum, _count);
        }

        public void GetFeatures(ref VBuffer<float> dst)
        {
            Ensure();
            var editor = VBufferEditor.Create(ref dst, _hidden.Length);
            _hidden.CopyTo(editor.Values);
            dst = editor.Commit();
        }

        public void GetPerplexity(ref float dst)
        {
            Ensure();
            dst = _count == 0 ? float.NaN : (float)Math.Exp(_crossEntropySum / _count);
        }
    }

    internal static string EmptyRowMessage(string column, long row, int rawLength) =>
        $"Column '{column}', row {row}: the token sequence is empty{(rawLength > 0 ? $" after dropping its {rawLength} unknown keys" : "")}. " +
        "This model was trained with UnknownTokens = Strict, which needs at least one known token per row; filter such rows out, or train with UnknownTokens = MapToUnknown (the default) or Skip.";

    private sealed class Mapper : MapperBase, ISaveAsOnnx
    {
        private readonly QuantizedRecurrentLanguageModelTransformer _owner;
        private readonly DataViewSchema.Column _input;

        public Mapper(QuantizedRecurrentLanguageModelTransformer parent, DataViewSchema inputSchema)
            : base(parent.Host.Register(nameof(Mapper)), inputSchema, parent)
        {
            _owner = parent;
            _input = TokenKeyColumn.Check(parent.Host, inputSchema, parent.InputColumnName, parent._keys.KeyCount);
        }

        protected override DataViewSchema.DetachedColumn[] GetOutputColumnsCore() =>
        [
            new DataViewSchema.DetachedColumn(_owner.OutputColumnName, new VectorDataViewType(NumberDataViewType.Single, _owner.HiddenSize)),
            new DataViewSchema.DetachedColumn(_owner.PerplexityColumnName, NumberDataViewType.Single),
        ];

        public override Delegate[] CreateGetters(DataViewRow input, Func<int, bool> activeOutput, out Action disposer)
        {
            disposer = null!;
            var getters = new Delegate[2];
            if (!activeOutput(0) && !activeOutput(1)) return getters;
            var scorer = new RowScorer(_owner, input, input.Schema[_input.Index]);
            if (activeOutput(0)) getters[0] = (ValueGetter<VBuffer<float>>)scorer.GetFeatures;
            if (activeOutput(1)) getters[1] = (ValueGetter<float>)scorer.GetPerplexity;
            return getters;
        }

        protected override Delegate MakeGetter(DataViewRow input, int iinfo, Func<int, bool> activeOutput, out Action disposer) =>
            CreateGetters(input, i => i == iinfo, out disposer)[iinfo];

        protected override Func<int, bool> GetDependenciesCore(Func<int, bool> activeOutput)
        {
            bool any = activeOutput(0) || activeOutput(1);
            int index = _input.Index;
            return col => any && col == index;
        }

        protected override void SaveModel(ModelSaveContext ctx) => _owner.SaveModel(ctx);

        public bool CanSaveOnnx(OnnxContext ctx) => true;

        public void SaveAsOnnx(OnnxContext ctx) => _owner.SaveAsOnnx(ctx);
    }
}

/// <summary>Key names of character tokenizers: ML.NET writes control characters and space as control pictures, e.g. "&lt;␠&gt;".</summary>
internal static class TokenText
{
    /// <summary>The name <c>TokenizeIntoCharactersAsKeys</c> gives character <paramref name="c"/>.</summary>
    public static string CharacterName(char c) => c <= 0x20 ? $"<{(char)(c + 0x2400)}>" : c == '\u007f' ? "<\u2421>" : c.ToString();

    /// <summary>The character a key name stands for, or the name itself when it is not a single character.</summary>
    public static string CharacterOf(string name)
    {
        if (name.Length == 3 && name[0] == '<' && name[2] == '>' && name[1] >= '\u2400' && name[1] <= '\u2421')
        {
            char c = name[1] == '\u2421' ? '\u007f' : (char)(name[1] - 0x2400);
            return c is '\u0002' or '\u0003' ? "" : c.ToString(); // text start/end markers
        }
        return name;
    }

    /// <summary>True when every name stands for one character: the column holds character keys.</summary>
    public static bool IsCharacterVocabulary(IEnumerable<string> names) => names.All(n => CharacterOf(n).Length <= 1 && n.Length > 0);
}
