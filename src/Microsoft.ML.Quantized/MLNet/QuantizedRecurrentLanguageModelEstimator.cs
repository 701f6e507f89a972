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
/// training rows (by default those seen at least <see cref="QuantizedRecurrentLanguageModelOptions.MinimumTokenCount"/>
/// times, plus <c>&lt;unk&gt;</c> for every other key: see <see cref="QuantizedRecurrentLanguageModelOptions.UnknownTokens"/>)
/// plus <c>&lt;eos&gt;</c>, named by the column's KeyValues annotation (or "k1", "k2", ... without one).
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
        SupportedMLNet.Check(_host);
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
        _host.CheckUserArg(Enum.IsDefined(_options.UnknownTokens), nameof(_options.UnknownTokens), $"UnknownTokens must be MapToUnknown, Skip or Strict; got {(int)_options.UnknownTokens}.");
        _host.CheckUserArg(_options.Training!.Seed == new TrainingOptions().Seed, "Training.Seed",
            $"Training.Seed ({_options.Training.Seed}) is not read on the ML.NET path: set QuantizedRecurrentLanguageModelOptions.Seed, or create the MLContext with a seed.");
        _host.CheckUserArg(_options.MinimumTokenCount >= 1, nameof(_options.MinimumTokenCount), $"MinimumTokenCount must be at least 1; got {_options.MinimumTokenCount}.");
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
        var cell = _options.Model.Recurrent.Cell;
        using var ch = _host.Start(cell == RecurrentCellKind.Lstm ? "Training quantized LSTM language model" : "Training quantized GRU language model");
        var (map, vocabulary, trainIds, rows, keyCount) = ReadTraining(ch, input);
        int[]? validIds = null;
        if (_options.ValidationData is { } validation)
            validIds = TokenIdStream.Read(_host, validation, InputColumnName, map, "validation data");

        var training = _options.Training.Clone();
        training.Seed = HostTraining.Seed(_env, _host, _options.Seed);
        training.Device = HostTraining.Device(_env, _host, training.Device);
        ch.Info($"{rows} rows, {trainIds.Length} tokens (row separators included), vocabulary {vocabulary.Count} ({map.Keys.Length} keys of {keyCount}{(map.HasUnknown ? " + <unk>" : "")} + <eos>); " +
                $"{cell} {_options.Model.Recurrent.Layers}x{_options.Model.Recurrent.HiddenSize}, weights {_options.Model.Recurrent.WeightQuantizer}, " +
                $"activations {_options.Model.Recurrent.ActivationQuantizer}; {training.Epochs} epochs, seed {training.Seed}, device {training.Device}.");

        QuantizedLanguageModel model;
        try
        {
            using var progress = new ChannelProgress(_host, ch, _options.Progress, "", "tokens");
            using var cancellation = new HostCancellation(_host, _options.CancellationToken);
            model = QuantizedLanguageModel.Train(vocabulary, trainIds, validIds, _options.Model, training, cancellation.Observe(progress), cancellation.Token);
        }
        catch (ArgumentException e) when (e.ParamName is "trainingTokens" or "tokens")
        {
            throw ch.Except(e, $"Column '{InputColumnName}': {e.Message} Use more data or a smaller TrainingOptions.BatchSize.");
        }
        var last = model.History.LastOrDefault();
        if (last is not null)
            ch.Info($"Trained: {model.History.Count} epochs, training loss {last.TrainingLoss:F4}{(double.IsNaN(last.ValidationLoss) ? "" : $", validation loss {last.ValidationLoss:F4}")}.");
        LanguageModelParts parts;
        try
        {
            parts = TrainedModelParts.Of(model);
        }
        catch
        {
            model.Dispose();
            throw;
        }
        return new QuantizedRecurrentLanguageModelTransformer(_host, parts, map, OutputColumnName, InputColumnName, PerplexityColumnName, _options.KeepTrainingWeights);
    }

    /// <summary>
    /// A sweep trial runner over this estimator's token-key column: reads <paramref name="training"/> as <see cref="Fit"/>
    /// does (the key map from its keys, with <see cref="QuantizedRecurrentLanguageModelOptions.UnknownTokens"/> and
    /// <see cref="QuantizedRecurrentLanguageModelOptions.MinimumTokenCount"/>; <c>&lt;eos&gt;</c> before each row) and
    /// <paramref name="validation"/> through that map (it takes the place of
    /// <see cref="QuantizedRecurrentLanguageModelOptions.ValidationData"/>, which is not read), once, with the checks and
    /// errors of <see cref="Fit"/>; every trial trains from this estimator's options: the trial sets the recurrent
    /// configuration, learning rate, KURE (<see cref="TrainingOptions.Kure"/> of the options when set, else
    /// <c>new KureOptions()</c>, for trials that use it), epochs and seed (the experiment's; use
    /// <c>mlContext.Quantized().CreateExperiment()</c> for the MLContext's). Trials are ranked by validation perplexity
    /// (<see cref="Sweep.SweepObjective.MinimizePerplexity"/>, the experiment's default). Turn the trial you pick into the
    /// transformer <see cref="Fit"/> returns (same key map and columns) with
    /// <see cref="Sweep.TransformerTrialRunner{TTransformer}.CreateTransformer"/>.
    /// </summary>
    public Sweep.TransformerTrialRunner<QuantizedRecurrentLanguageModelTransformer> CreateTrialRunner(IDataView training, IDataView validation)
    {
        _host.CheckValue(training, nameof(training));
        _host.CheckValue(validation, nameof(validation));
        using var ch = _host.Start("Reading sweep data");
        var (map, vocabulary, trainIds, rows, keyCount) = ReadTraining(ch, training);
        var validIds = TokenIdStream.Read(_host, validation, InputColumnName, map, "validation data");
        var trainingOptions = _options.Training.Clone();
        trainingOptions.Device = HostTraining.Device(_env, _host, trainingOptions.Device);
        ch.Info($"Sweep data: {rows} rows, {trainIds.Length} training and {validIds.Length} validation tokens (row separators included), " +
                $"vocabulary {vocabulary.Count} ({map.Keys.Length} keys of {keyCount}{(map.HasUnknown ? " + <unk>" : "")} + <eos>).");
        Sweep.LanguageModelTrialRunner runner;
        try
        {
            runner = new Sweep.LanguageModelTrialRunner(vocabulary, trainIds, validIds, _options.Model, trainingOptions) { Kure = _options.Training.Kure?.Clone() ?? new KureOptions() };
        }
        catch (ArgumentException e)
        {
            throw ch.Except(e, $"The sweep data of column '{InputColumnName}' is not usable: {e.Message}");
        }
        string device = trainingOptions.Device;
        return new Sweep.TransformerTrialRunner<QuantizedRecurrentLanguageModelTransformer>(runner, stream =>
        {
            var model = QuantizedLanguageModel.Load(stream, device);
            try
            {
                if (!model.Vocabulary.Tokens.SequenceEqual(vocabulary.Tokens, StringComparer.Ordinal))
                    throw new ArgumentException($"The trial's language model has a vocabulary of {model.Vocabulary.Count} tokens that is not this trial runner's ({vocabulary.Count}): " +
                                                "it was trained by another runner or on other data.", "trial");
                return new QuantizedRecurrentLanguageModelTransformer(_host, TrainedModelParts.Of(model), map, OutputColumnName, InputColumnName, PerplexityColumnName, _options.KeepTrainingWeights);
            }
            catch
            {
                model.Dispose();
                throw;
            }
        });
    }

    /// <summary>
    /// Reads the token column of the training data as <see cref="Fit"/> trains on it: the key map from the keys' counts,
    /// the vocabulary (key names, then <c>&lt;unk&gt;</c> when the map has one, then <c>&lt;eos&gt;</c>) and the token ids.
    /// </summary>
    private (TokenKeyMap Map, Vocabulary Vocabulary, int[] TrainIds, int Rows, ulong KeyCount) ReadTraining(IChannel ch, IDataView input)
    {
        var column = TokenKeyColumn.Check(_host, input.Schema, InputColumnName);
        ulong keyCount = TokenKeyColumn.KeyCount(column);

        // The training rows' keys (every key the column holds), then the key map from their counts.
        var (stream, rowLengths, counts) = ReadTrainingRows(input, column);
        var map = TokenKeyMap.FromCounts(keyCount, counts, _options.UnknownTokens, _options.MinimumTokenCount);
        if (map.Keys.Length == 0)
            throw ch.Except(counts.Count == 0
                ? $"Column '{InputColumnName}' of the training data holds no tokens ({rowLengths.Count} rows): nothing to train on."
                : $"Column '{InputColumnName}': no key occurs at least MinimumTokenCount = {_options.MinimumTokenCount} times in the training data, so every token would be <unk>; lower MinimumTokenCount or use more data.");
        var trainIds = ToIds(stream, rowLengths, map);

        var names = TokenKeyColumn.KeyNames(column);
        var keyNames = map.Keys.Select(names).ToList();
        var specials = map.HasUnknown ? new[] { Vocabulary.UnknownToken, Vocabulary.EndOfSentenceToken } : new[] { Vocabulary.EndOfSentenceToken };
        var tokens = UniqueNames(keyNames, specials);
        var vocabulary = Vocabulary.FromTokens(tokens.Concat(specials).ToList(), TokenText.IsCharacterVocabulary(keyNames));
        long unknownTokens = map.HasUnknown ? trainIds.LongCount(id => id == map.UnknownId) : 0;
        if (map.HasUnknown)
            ch.Info($"{map.Keys.Length} keys seen at least {_options.MinimumTokenCount} times are known; {counts.Count - map.Keys.Length} rarer keys and missing keys " +
                    $"({unknownTokens} training tokens) are trained as {Vocabulary.UnknownToken}.");
        return (map, vocabulary, trainIds, rowLengths.Count, keyCount);
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
    /// Reads every training row's keys (0 for a missing or out-of-range key) into one stream, with each row's length, and
    /// counts the valid keys. <see cref="UnknownTokenHandling.Skip"/> drops missing keys and rows left empty;
    /// <see cref="UnknownTokenHandling.Strict"/> rejects both, naming the row; <see cref="UnknownTokenHandling.MapToUnknown"/>
    /// keeps missing keys (they train <c>&lt;unk&gt;</c>) and drops empty rows.
    /// </summary>
    private (List<ulong> Keys, List<int> RowLengths, Dictionary<ulong, long> Counts) ReadTrainingRows(IDataView data, DataViewSchema.Column column)
    {
        var stream = new List<ulong>();
        var rowLengths = new List<int>();
        var counts = new Dictionary<ulong, long>();
        var probe = new TokenKeyMap(TokenKeyColumn.KeyCount(column), [], UnknownTokenHandling.Strict);
        using var cursor = data.GetRowCursor(new[] { column });
        var reader = TokenKeyColumn.CreateReader(cursor, column);
        while (cursor.MoveNext())
        {
            _host.CheckAlive();
            var keys = reader.Read();
            int start = stream.Count;
            for (int i = 0; i < keys.Length; i++)
            {
                ulong key = keys[i];
                if (key == 0 || key > probe.KeyCount)
                {
                    if (_options.UnknownTokens == UnknownTokenHandling.Skip) continue;
                    if (_options.UnknownTokens == UnknownTokenHandling.Strict) throw _host.Except(probe.UnknownKeyMessage(key, InputColumnName, cursor.Position, i));
                    key = 0;
                }
                else counts[key] = counts.GetValueOrDefault(key) + 1;
                stream.Add(key);
            }
            if (stream.Count == start)
            {
                if (_options.UnknownTokens == UnknownTokenHandling.Strict)
                    throw _host.Except(QuantizedRecurrentLanguageModelTransformer.EmptyRowMessage(InputColumnName, cursor.Position, keys.Length));
                continue;
            }
            rowLengths.Add(stream.Count - start);
        }
        return (stream, rowLengths, counts);
    }

    /// <summary>The training token ids: <c>&lt;eos&gt;</c> before each row and at the end, keys through the map.</summary>
    private static int[] ToIds(List<ulong> keys, List<int> rowLengths, TokenKeyMap map)
    {
        var ids = new int[keys.Count + rowLengths.Count + 1];
        int k = 0, j = 0;
        foreach (int length in rowLengths)
        {
            ids[j++] = map.EndOfSequenceId;
            for (int end = k + length; k < end; k++)
                ids[j++] = map.TryGetId(keys[k], out int id) ? id : map.UnknownId; // only MapToUnknown keeps keys the map lacks
        }
        ids[j] = map.EndOfSequenceId;
        return ids;
    }

    /// <summary>The key names made unique (a repeat gets "#2", "#3", ...), none equal to one of <paramref name="reserved"/>.</summary>
    private static List<string> UniqueNames(List<string> names, IEnumerable<string> reserved)
    {
        var seen = new HashSet<string>(reserved, StringComparer.Ordinal);
        var unique = new List<string>(names.Count);
        foreach (var original in names)
        {
            var name = original;
            for (int k = 2; !seen.Add(name); k++) name = $"{original}#{k}";
            unique.Add(name);
        }
        return unique;
    }
}
