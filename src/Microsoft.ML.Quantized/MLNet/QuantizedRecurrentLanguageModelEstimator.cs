using Microsoft.ML.Data;
using Microsoft.ML.Runtime;

namespace Microsoft.ML.Quantized;

/// <summary>
/// Trains a quantized recurrent (LSTM or GRU) language model on a variable-length token-key column and returns a
/// <see cref="QuantizedRecurrentLanguageModelTransformer"/> that adds hidden-state features and a per-row perplexity.
/// Create it with <c>mlContext.Transforms.QuantizedLstm(...)</c> or <c>QuantizedGru(...)</c>.
/// </summary>
/// <remarks>
/// Rows are read in order and joined into one token stream with <c>&lt;eos&gt;</c> before each row (and at the
/// end), which is then trained with truncated backpropagation through time (<see cref="TrainingOptions.SequenceLength"/>
/// steps, <see cref="TrainingOptions.BatchSize"/> parallel streams). The vocabulary is the keys that occur in the
/// training rows plus <c>&lt;eos&gt;</c>, named by the column's KeyValues annotation (or "k1", "k2", ... without one).
/// Fit copies the token ids into memory (4 bytes a token). Training logs to the MLContext's log.
/// </remarks>
public sealed class QuantizedRecurrentLanguageModelEstimator : IEstimator<QuantizedRecurrentLanguageModelTransformer>
{
    private readonly IHostEnvironment _env;
    private readonly IHost _host;
    private readonly QuantizedRecurrentLanguageModelOptions _options;

    internal QuantizedRecurrentLanguageModelEstimator(IHostEnvironment env, string outputColumnName, string? inputColumnName,
        QuantizedRecurrentLanguageModelOptions? options, RecurrentCellKind cell)
    {
        Contracts.CheckValue(env, nameof(env));
        _env = env;
        _host = env.Register(cell == RecurrentCellKind.Lstm ? "QuantizedLstm" : "QuantizedGru");
        _host.CheckNonEmpty(outputColumnName, nameof(outputColumnName));
        OutputColumnName = outputColumnName;
        InputColumnName = string.IsNullOrEmpty(inputColumnName) ? outputColumnName : inputColumnName;
        _options = options?.Clone() ?? new QuantizedRecurrentLanguageModelOptions();
        _host.CheckUserArg(_options.Model is not null, nameof(_options.Model), "QuantizedRecurrentLanguageModelOptions.Model must not be null.");
        _host.CheckUserArg(_options.Training is not null, nameof(_options.Training), "QuantizedRecurrentLanguageModelOptions.Training must not be null.");
        _options.Model!.Recurrent.Cell = cell;
        PerplexityColumnName = string.IsNullOrEmpty(_options.PerplexityColumnName) ? OutputColumnName + "Perplexity" : _options.PerplexityColumnName;
        if (PerplexityColumnName == OutputColumnName)
            throw _host.ExceptUserArg(nameof(_options.PerplexityColumnName), $"The perplexity column must differ from the output column '{OutputColumnName}'.");
        try
        {
            OptionsValidator.Validate(_options.Model);
            OptionsValidator.Validate(_options.Training!);
        }
        catch (ArgumentException e)
        {
            throw _host.ExceptUserArg(e.ParamName ?? "options", e.Message);
        }
    }

    /// <summary>The token-key column read.</summary>
    public string InputColumnName { get; }

    /// <summary>The hidden-state feature column added.</summary>
    public string OutputColumnName { get; }

    /// <summary>The per-row perplexity column added.</summary>
    public string PerplexityColumnName { get; }

    /// <summary>Trains the model on the token column of <paramref name="input"/>.</summary>
    public QuantizedRecurrentLanguageModelTransformer Fit(IDataView input)
    {
        _host.CheckValue(input, nameof(input));
        var column = TokenKeyColumn.Check(_host, input.Schema, InputColumnName);
        ulong keyCount = TokenKeyColumn.KeyCount(column);
        var cell = _options.Model.Recurrent.Cell;
        using var ch = _host.Start(cell == RecurrentCellKind.Lstm ? "Training quantized LSTM language model" : "Training quantized GRU language model");

        // Pass 1: the training rows as raw keys, 0 standing for <eos>; the keys that occur.
        var observed = new HashSet<ulong>();
        var raw = ReadTrainingStream(input, column, observed, out long rows);
        if (observed.Count == 0)
            throw ch.Except($"Column '{InputColumnName}' of the training data holds no tokens ({rows} rows): nothing to train on.");
        var keys = observed.Order().ToArray();
        var map = new TokenKeyMap(keyCount, keys);
        var trainIds = ToIds(raw, map);
        int[]? validIds = null;
        if (_options.ValidationData is { } validation)
            validIds = TokenIdStream.Read(_host, validation, InputColumnName, map, _options.SkipUnknownKeys, _options.AllowEmptySequences, "validation data");

        var names = TokenKeyColumn.KeyNames(column);
        var tokens = UniqueNames(keys.Select(names).Append(Vocabulary.EndOfSentenceToken).ToList());
        var vocabulary = Vocabulary.FromTokens(tokens, TokenText.IsCharacterVocabulary(tokens.Take(tokens.Count - 1)));

        var training = _options.Training.Clone();
        training.Seed = _options.Seed ?? (_env is IHostEnvironmentInternal { Seed: int contextSeed } ? contextSeed : _host.Rand.Next());
        if (string.Equals(training.Device, "cpu", StringComparison.OrdinalIgnoreCase) && GpuRequested(out string? gpu)) training.Device = gpu!;
        ch.Info($"{rows} rows, {trainIds.Length} tokens (row separators included), vocabulary {vocabulary.Count} ({keys.Length} keys of {keyCount} + <eos>); " +
                $"{cell} {_options.Model.Recurrent.Layers}x{_options.Model.Recurrent.HiddenSize}, weights {_options.Model.Recurrent.WeightQuantizer}, " +
                $"activations {_options.Model.Recurrent.ActivationQuantizer}; {training.Epochs} epochs, seed {training.Seed}, device {training.Device}.");

        QuantizedLanguageModel model;
        try
        {
            model = QuantizedLanguageModel.Train(vocabulary, trainIds, validIds, _options.Model, training,
                new ChannelProgress(ch, _options.Progress), _options.CancellationToken);
        }
        catch (ArgumentException e) when (e.ParamName is "trainingTokens" or "tokens")
        {
            throw ch.Except(e, $"Column '{InputColumnName}': {e.Message} Use more data or a smaller TrainingOptions.BatchSize.");
        }
        var last = model.History.LastOrDefault();
        if (last is not null)
            ch.Info($"Trained: {model.History.Count} epochs, training loss {last.TrainingLoss:F4}{(double.IsNaN(last.ValidationLoss) ? "" : $", validation loss {last.ValidationLoss:F4}")}.");
        return new QuantizedRecurrentLanguageModelTransformer(_host, model, map, OutputColumnName, InputColumnName, PerplexityColumnName,
            _options.SkipUnknownKeys, _options.AllowEmptySequences);
    }

    /// <summary>The schema after the transformer: the input plus the feature vector and perplexity columns.</summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
        => OutputSchema(_host, inputSchema, InputColumnName, OutputColumnName, PerplexityColumnName);

    /// <summary>
    /// The schema after a language-model transformer (shared with <see cref="KureFineTuneEstimator"/>): the input, checked
    /// for the token-key column, plus the feature vector and perplexity columns.
    /// </summary>
    internal static SchemaShape OutputSchema(IExceptionContext ectx, SchemaShape inputSchema, string inputColumnName, string outputColumnName, string perplexityColumnName)
    {
        ectx.CheckValue(inputSchema, nameof(inputSchema));
        TokenKeyColumn.Check(ectx, inputSchema, inputColumnName);
        var result = inputSchema.ToDictionary(c => c.Name);
        result[outputColumnName] = new SchemaShape.Column(outputColumnName, SchemaShape.Column.VectorKind.Vector, NumberDataViewType.Single, false);
        result[perplexityColumnName] = new SchemaShape.Column(perplexityColumnName, SchemaShape.Column.VectorKind.Scalar, NumberDataViewType.Single, false);
        return new SchemaShape(result.Values);
    }

    /// <summary>
    /// Reads every training row's keys into one stream, 0 (for &lt;eos&gt;) before each row and at the end, and records the
    /// keys that occur in <paramref name="observed"/> (the key map is built from them, so ids come after this pass).
    /// </summary>
    private List<ulong> ReadTrainingStream(IDataView data, DataViewSchema.Column column, HashSet<ulong> observed, out long rows)
    {
        var stream = new List<ulong>();
        rows = 0;
        using var cursor = data.GetRowCursor(new[] { column });
        var reader = TokenKeyColumn.CreateReader(cursor, column);
        var probe = new TokenKeyMap(TokenKeyColumn.KeyCount(column), []);
        while (cursor.MoveNext())
        {
            rows++;
            var keys = reader.Read();
            int start = stream.Count;
            stream.Add(0);
            for (int i = 0; i < keys.Length; i++)
            {
                ulong key = keys[i];
                if (key == 0 || key > probe.KeyCount)
                {
                    if (_options.SkipUnknownKeys) continue;
                    throw _host.Except(probe.UnknownKeyMessage(key, InputColumnName, cursor.Position, i));
                }
                stream.Add(key);
                observed.Add(key);
            }
            if (stream.Count == start + 1)
            {
                if (!_options.AllowEmptySequences)
                    throw _host.Except(QuantizedRecurrentLanguageModelTransformer.EmptyRowMessage(InputColumnName, cursor.Position, keys.Length));
                stream.RemoveAt(start);
            }
        }
        stream.Add(0);
        return stream;
    }

    private static int[] ToIds(List<ulong> stream, TokenKeyMap map)
    {
        var ids = new int[stream.Count];
        for (int i = 0; i < ids.Length; i++)
        {
            if (stream[i] == 0) ids[i] = map.EndOfSequenceId;
            else if (!map.TryGetId(stream[i], out ids[i])) throw new InvalidOperationException($"Key {stream[i]} is missing from the key map.");
        }
        return ids;
    }

    private static List<string> UniqueNames(List<string> names)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < names.Count; i++)
        {
            var name = names[i];
            for (int k = 2; !seen.Add(name); k++) name = $"{names[i]}#{k}";
            names[i] = name;
        }
        return names;
    }

    /// <summary>MLContext.GpuDeviceId asks for a GPU: use it when libtorch has CUDA, else fall back to the CPU if allowed.</summary>
    private bool GpuRequested(out string? device)
    {
        device = null;
        if (_env is not IHostEnvironmentInternal { GpuDeviceId: int id } env) return false;
        if (TorchSharp.torch.cuda.is_available())
        {
            device = $"cuda:{id}";
            return true;
        }
        if (env.FallbackToCpu) return false;
        throw _host.Except($"MLContext.GpuDeviceId is {id} but CUDA is not available to TorchSharp: reference TorchSharp-cuda-linux (or -windows), or set MLContext.FallbackToCpu = true.");
    }

    /// <summary>Training progress to ML.NET's log (and to the caller's <see cref="IProgress{T}"/>).</summary>
    private sealed class ChannelProgress(IChannel channel, IProgress<TrainingProgress>? inner) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value)
        {
            var validation = value.ValidationLoss is double v ? $", validation loss {v:F4}" : "";
            channel.Info($"Epoch {value.Epoch}/{value.Epochs}, step {value.Step}/{value.StepsPerEpoch}: loss {value.Loss:F4}{validation}, " +
                         $"learning rate {value.LearningRate:G4}, {value.UnitsPerSecond:F0} tokens/s.");
            inner?.Report(value);
        }
    }
}
