using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using Microsoft.ML.Trainers;

namespace Microsoft.ML.Quantized;

/// <summary>
/// What the binary and multiclass quantized sequence-classifier trainers share: reading the features column (token
/// keys or float frames) and the label column row by row with ML.NET-style errors, training a
/// <see cref="QuantizedSequenceClassifier"/> with logging to the MLContext's log, and the output schema.
/// </summary>
/// <typeparam name="TTransformer">The prediction transformer the trainer returns.</typeparam>
/// <typeparam name="TModel">The model parameters it holds.</typeparam>
public abstract class QuantizedSequenceTrainerBase<TTransformer, TModel> : ITrainerEstimator<TTransformer, TModel>
    where TTransformer : ISingleFeaturePredictionTransformer<TModel>
    where TModel : SequenceClassifierModelParameters
{
    private protected QuantizedSequenceTrainerBase(IHostEnvironment env, string name, SequenceClassifierTrainerOptions? options, RecurrentCellKind cell)
    {
        Contracts.CheckValue(env, nameof(env));
        Env = env;
        Host = env.Register(name);
        SupportedMLNet.Check(Host);
        Options = options?.Clone() ?? new SequenceClassifierTrainerOptions();
        Host.CheckUserArg(Options.Model is not null, nameof(Options.Model), "SequenceClassifierTrainerOptions.Model must not be null.");
        Host.CheckUserArg(Options.Training is not null, nameof(Options.Training), "SequenceClassifierTrainerOptions.Training must not be null.");
        Host.CheckNonEmpty(Options.LabelColumnName, nameof(Options.LabelColumnName));
        Host.CheckNonEmpty(Options.FeatureColumnName, nameof(Options.FeatureColumnName));
        Host.CheckUserArg(Options.FrameSize >= 1, nameof(Options.FrameSize), $"FrameSize must be at least 1; got {Options.FrameSize}.");
        Host.CheckUserArg(Enum.IsDefined(Options.UnknownTokens), nameof(Options.UnknownTokens), $"UnknownTokens must be MapToUnknown, Skip or Strict; got {(int)Options.UnknownTokens}.");
        Host.CheckUserArg(Options.Training!.Seed == new TrainingOptions().Seed, "Training.Seed",
            $"Training.Seed ({Options.Training.Seed}) is not read on the ML.NET path: set SequenceClassifierTrainerOptions.Seed, or create the MLContext with a seed.");
        Host.CheckUserArg(Options.MinimumTokenCount >= 1, nameof(Options.MinimumTokenCount), $"MinimumTokenCount must be at least 1; got {Options.MinimumTokenCount}.");
        Options.Model!.Recurrent.Cell = cell;
        Options.Model.FrameSize = Options.FrameSize;
        try
        {
            OptionsValidator.Validate(Options.Model);
            OptionsValidator.Validate(Options.Training!);
        }
        catch (ArgumentException e)
        {
            throw Host.ExceptUserArg(e.ParamName ?? "options", e.Message);
        }
    }

    private protected IHostEnvironment Env { get; }

    private protected IHost Host { get; }

    private protected SequenceClassifierTrainerOptions Options { get; }

    /// <summary>No normalization or caching needed; validation data is supported (<see cref="SequenceClassifierTrainerOptions.ValidationData"/>).</summary>
    public TrainerInfo Info { get; } = new(normalization: false, caching: false, supportValid: true);

    /// <summary>LSTM or GRU.</summary>
    public RecurrentCellKind Cell => Options.Model.Recurrent.Cell;

    /// <summary>The label column read.</summary>
    public string LabelColumnName => Options.LabelColumnName;

    /// <summary>The features column read (token keys or float frames).</summary>
    public string FeatureColumnName => Options.FeatureColumnName;

    /// <summary>Trains the classifier on <paramref name="input"/> and returns the prediction transformer.</summary>
    public TTransformer Fit(IDataView input) => Train(input, null, null);

    /// <summary>
    /// KURE fine-tuning of <paramref name="start"/> on <paramref name="input"/> with these options (whose
    /// <see cref="TrainingOptions.Kure"/> is set): the data is read and checked as <see cref="Fit"/> reads it, and must
    /// match the model (same feature kind and key count, same number of classes). Returns a new prediction transformer;
    /// <paramref name="start"/> is left as it is.
    /// </summary>
    /// <remarks>
    /// With several <paramref name="lambdas"/>, one copy is fine-tuned per lambda and the one whose copy quantized with
    /// <paramref name="searchQuantizer"/> has the lowest validation log-loss is kept (validation data is required then).
    /// </remarks>
    internal TTransformer FineTune(IDataView input, TModel start, IReadOnlyList<double> lambdas, QuantizerOptions searchQuantizer)
    {
        Host.CheckValue(start, nameof(start));
        Host.Assert(Options.Training.Kure is not null);
        return Train(input, start, new LambdaSearch(lambdas, searchQuantizer));
    }

    /// <summary>The lambdas a KURE fine-tuning tries and the quantizer it scores them under.</summary>
    private sealed record LambdaSearch(IReadOnlyList<double> Lambdas, QuantizerOptions Quantizer);

    /// <summary>Trains a new classifier (<paramref name="start"/> null) or fine-tunes a copy of <paramref name="start"/>.</summary>
    private TTransformer Train(IDataView input, TModel? start, LambdaSearch? search)
    {
        Host.CheckValue(input, nameof(input));
        using var ch = Host.Start(start is null ? "Training" : "KURE fine-tuning");
        var (train, valid, options, kind, keys) = Read(ch, input, Options.ValidationData, start);
        if (train.Labels.Length == 0) throw ch.Except($"The training data has no rows: nothing to train on (columns '{FeatureColumnName}', '{LabelColumnName}').");
        int classes = options.ClassCount;
        var training = Options.Training.Clone();
        training.Seed = HostTraining.Seed(Env, Host, Options.Seed);
        training.Device = HostTraining.Device(Env, Host, training.Device);

        var r = options.Recurrent;
        ch.Info($"{train.Labels.Length} rows{(valid is null ? "" : $" (+ {valid.Labels.Length} validation rows)")}, {classes} classes, " +
                (keys is not null ? $"token keys 1..{keys.KeyCount} ({keys.Keys.Length} known{(keys.HasUnknown ? " + <unk>" : "")})" : $"float frames of {Options.FrameSize}") +
                $"; {r.Cell} {r.Layers}x{r.HiddenSize}, weights {r.WeightQuantizer.Kind}, activations {r.ActivationQuantizer.Kind}; " +
                $"{training.Epochs} epochs, batch {training.BatchSize}, {training.Optimizer} at {training.LearningRate:G4}, seed {training.Seed}, device {training.Device}.");

        if (start is not null)
            ch.Info($"KURE fine-tuning: lambda {string.Join(" or ", search!.Lambdas)}, target {training.Kure!.Target}, tensors {training.Kure.Tensors}.");

        QuantizedSequenceClassifier classifier;
        using var channelProgress = new ChannelProgress(Host, ch, Options.Progress, start is null ? "" : "KURE ", "examples");
        using var cancellation = new HostCancellation(Host, Options.CancellationToken);
        var progress = cancellation.Observe(channelProgress);
        var token = cancellation.Token;
        try
        {
            classifier = (start, kind) switch
            {
                (null, SequenceClassifierInputKind.Tokens) => QuantizedSequenceClassifier.Train(train.Tokens!, train.Labels, valid?.Tokens, valid?.Labels, options, training, progress, token),
                (null, _) => QuantizedSequenceClassifier.Train(train.Frames!, train.Labels, valid?.Frames, valid?.Labels, options, training, progress, token),
                _ => start.UseClassifier(c => KureLambdaSearch.Choose(ch, search!.Lambdas, $"validation log-loss at {search.Quantizer}",
                    lambda =>
                    {
                        var kure = training.Kure!.Clone();
                        kure.Lambda = lambda;
                        return kind == SequenceClassifierInputKind.Tokens
                            ? c.FineTuneWithKure(train.Tokens!, train.Labels, valid?.Tokens, valid?.Labels, kure, training, progress, token)
                            : c.FineTuneWithKure(train.Frames!, train.Labels, valid?.Frames, valid?.Labels, kure, training, progress, token);
                    },
                    tuned =>
                    {
                        using var quantized = tuned.WithQuantization(search.Quantizer);
                        return kind == SequenceClassifierInputKind.Tokens
                            ? quantized.Evaluate(valid!.Tokens!, valid.Labels).LogLoss
                            : quantized.Evaluate(valid!.Frames!, valid.Labels).LogLoss;
                    })),
            };
        }
        catch (ArgumentException e)
        {
            throw ch.Except(e, $"{(start is null ? "Training" : "KURE fine-tuning")} on column '{FeatureColumnName}' failed: {e.Message}");
        }
        var last = classifier.History.LastOrDefault();
        if (last is not null)
            ch.Info($"Trained: {classifier.History.Count} epochs, training loss {last.TrainingLoss:F4}{(double.IsNaN(last.ValidationLoss) ? "" : $", validation loss {last.ValidationLoss:F4}")}.");
        TModel model;
        try
        {
            model = CreateModel(TrainedModelParts.Of(classifier), keys, SequenceClassifierModelParameters.PriorOf(train.Labels, classes));
        }
        catch
        {
            classifier.Dispose();
            throw;
        }
        return MakeTransformer(model, input.Schema);
    }

    /// <summary>
    /// A sweep trial runner over this trainer's columns: reads <paramref name="training"/> and <paramref name="validation"/>
    /// once, with the checks and errors of <see cref="Fit"/> (token keys through the key map <see cref="Fit"/> would build
    /// from <paramref name="training"/>: <see cref="SequenceClassifierTrainerOptions.UnknownTokens"/> and
    /// <see cref="SequenceClassifierTrainerOptions.MinimumTokenCount"/> apply), and trains every trial from this trainer's
    /// options: the trial sets the recurrent configuration, learning rate, KURE (<see cref="TrainingOptions.Kure"/> of the
    /// options when set, else <c>new KureOptions()</c>, for trials that use it), epochs and seed (the experiment's; use
    /// <c>mlContext.Quantized().CreateExperiment()</c> for the MLContext's); the validation rows rank the trials. Run it with
    /// a <see cref="Sweep.QuantizationExperiment"/>, then turn the trial you pick into the prediction transformer
    /// <see cref="Fit"/> returns with <see cref="Sweep.TransformerTrialRunner{TTransformer}.CreateTransformer"/>
    /// (same key map, class prior and columns; <paramref name="training"/>'s schema is its training schema).
    /// </summary>
    public Sweep.TransformerTrialRunner<TTransformer> CreateTrialRunner(IDataView training, IDataView validation)
    {
        Host.CheckValue(training, nameof(training));
        Host.CheckValue(validation, nameof(validation));
        using var ch = Host.Start("Reading sweep data");
        var (train, valid, options, kind, keys) = Read(ch, training, validation, start: null);
        var trainingOptions = Options.Training.Clone();
        trainingOptions.Device = HostTraining.Device(Env, Host, trainingOptions.Device);
        var kure = Options.Training.Kure?.Clone() ?? new KureOptions();
        Sweep.SequenceClassifierTrialRunner runner;
        try
        {
            runner = kind == SequenceClassifierInputKind.Tokens
                ? new Sweep.SequenceClassifierTrialRunner(train.Tokens!, train.Labels, valid!.Tokens!, valid.Labels, options, trainingOptions) { Kure = kure }
                : new Sweep.SequenceClassifierTrialRunner(train.Frames!, train.Labels, valid!.Frames!, valid.Labels, options, trainingOptions) { Kure = kure };
        }
        catch (ArgumentException e)
        {
            throw ch.Except(e, $"The sweep data of column '{FeatureColumnName}' is not usable: {e.Message}");
        }
        var prior = SequenceClassifierModelParameters.PriorOf(train.Labels, options.ClassCount);
        var schema = training.Schema;
        string device = trainingOptions.Device;
        return new Sweep.TransformerTrialRunner<TTransformer>(runner, stream => TransformerOfTrial(stream, device, kind, options, keys, prior, schema));
    }

    /// <summary>
    /// The prediction transformer over a sweep trial's saved classifier, with the key map, class prior and training schema
    /// of the data the runner read; <see cref="ArgumentException"/> when the classifier does not fit them.
    /// </summary>
    private TTransformer TransformerOfTrial(Stream stream, string device, SequenceClassifierInputKind kind, SequenceClassifierOptions options,
        TokenKeyMap? keys, float[] prior, DataViewSchema schema)
    {
        var classifier = QuantizedSequenceClassifier.Load(stream, device);
        try
        {
            string? mismatch =
                classifier.InputKind != kind ? $"it reads {classifier.InputKind}, this runner's data {kind}"
                : classifier.ClassCount != options.ClassCount ? $"it has {classifier.ClassCount} classes, this runner's label {options.ClassCount}"
                : kind == SequenceClassifierInputKind.Tokens && classifier.Options.VocabularySize != options.VocabularySize
                    ? $"it has {classifier.Options.VocabularySize} token ids, this runner's key map {options.VocabularySize}"
                : kind == SequenceClassifierInputKind.Frames && classifier.Options.FrameSize != options.FrameSize
                    ? $"it reads frames of {classifier.Options.FrameSize}, this runner {options.FrameSize}"
                : null;
            if (mismatch is not null)
                throw new ArgumentException($"The trial's classifier does not fit the data of this trial runner ({mismatch}): it was trained by another runner or on other data.", "trial");
            return MakeTransformer(CreateModel(TrainedModelParts.Of(classifier), keys, prior), schema);
        }
        catch
        {
            classifier.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Checks the columns of <paramref name="input"/> (and of <paramref name="validation"/>, which must match; and that
    /// they fit <paramref name="start"/> when fine-tuning) and reads both; returns the model options with the class count
    /// and, for token keys, the key map (counted on <paramref name="input"/>, or <paramref name="start"/>'s) and the
    /// vocabulary size set.
    /// </summary>
    private (Examples Train, Examples? Valid, SequenceClassifierOptions Model, SequenceClassifierInputKind Kind, TokenKeyMap? Keys) Read(
        IChannel ch, IDataView input, IDataView? validation, TModel? start)
    {
        var feature = SequenceClassifierFeatureColumn.Check(Host, input.Schema, FeatureColumnName, out var kind);
        var label = CheckLabel(input.Schema, out int classes);
        ulong keyCount = kind == SequenceClassifierInputKind.Tokens ? ((KeyDataViewType)((VectorDataViewType)feature.Type).ItemType).Count : 0;
        if (start is not null) CheckFits(start, kind, keyCount, classes, feature, label);
        if (keyCount > int.MaxValue) throw ch.Except($"Column '{FeatureColumnName}' has {keyCount} key values; at most {int.MaxValue} are supported.");
        var options = Options.Model.Clone();
        options.ClassCount = classes;
        var trainRows = ReadRows(ch, input, feature, label, kind, "training data");
        TokenKeyMap? keys = null;
        if (kind == SequenceClassifierInputKind.Tokens)
        {
            keys = start?.Keys ?? TokenKeyMap.FromCounts(keyCount, CountKeys(trainRows.Keys!, keyCount), Options.UnknownTokens, Options.MinimumTokenCount);
            if (keys.Keys.Length == 0)
                throw ch.Except($"Column '{FeatureColumnName}': no key occurs at least {(keys.HasUnknown ? Options.MinimumTokenCount : 1)} time(s) in the training data, so the model would know no token; " +
                                "lower MinimumTokenCount or use more data.");
            options.VocabularySize = keys.Count;
        }
        var train = ToExamples(trainRows, keys, "training data");
        Examples? valid = null;
        if (validation is not null)
        {
            // Validation data reaches the trainer as it is: the pipeline's transforms do not run on it.
            if (validation.Schema.GetColumnOrNull(FeatureColumnName) is null)
                throw Host.ExceptParam(nameof(SequenceClassifierTrainerOptions.ValidationData),
                    $"The validation data has no feature column '{FeatureColumnName}'. It must hold the columns this trainer reads, as the " +
                    "training data reaches it: pass it through the same fitted transforms first (e.g. featurizer.Fit(train).Transform(validation)).");
            var validFeature = SequenceClassifierFeatureColumn.Check(Host, validation.Schema, FeatureColumnName, out var validKind);
            if (validKind != kind || (kind == SequenceClassifierInputKind.Tokens && !validFeature.Type.Equals(feature.Type)))
                throw Host.ExceptSchemaMismatch(nameof(validation), "feature", FeatureColumnName, feature.Type.ToString(), validFeature.Type.ToString());
            var validLabel = CheckLabel(validation.Schema, out int validClasses);
            if (validClasses != classes)
                throw Host.ExceptSchemaMismatch(nameof(validation), "label", LabelColumnName, label.Type.ToString(), validLabel.Type.ToString());
            valid = ToExamples(ReadRows(ch, validation, validFeature, validLabel, kind, "validation data"), keys, "validation data");
        }
        return (train, valid, options, kind, keys);
    }

    /// <summary>The schema after the transformer: the input plus ML.NET's standard classifier output columns.</summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        Host.CheckValue(inputSchema, nameof(inputSchema));
        SequenceClassifierFeatureColumn.Check(Host, inputSchema, FeatureColumnName);
        if (!inputSchema.TryFindColumn(LabelColumnName, out var label)) throw Host.ExceptSchemaMismatch(nameof(inputSchema), "label", LabelColumnName);
        CheckLabel(label);
        var result = inputSchema.ToDictionary(c => c.Name);
        foreach (var column in GetOutputColumns(label)) result[column.Name] = column;
        return new SchemaShape(result.Values);
    }

    /// <summary>Checks that the data read for fine-tuning has the model's feature kind, key count and classes.</summary>
    private void CheckFits(TModel model, SequenceClassifierInputKind kind, ulong keyCount, int classes, DataViewSchema.Column feature, DataViewSchema.Column label)
    {
        if (kind != model.InputKind || keyCount != model.KeyCount)
        {
            var expected = model.InputKind == SequenceClassifierInputKind.Tokens ? $"Vector<Key<UInt32, 0-{model.KeyCount - 1}>> (the key type the model was trained on)" : "Vector<Single> (float frames, as the model was trained on)";
            throw Host.ExceptSchemaMismatch("input", "feature", FeatureColumnName, expected, feature.Type.ToString());
        }
        if (classes != model.ClassCount)
            throw Host.ExceptSchemaMismatch("input", "label", LabelColumnName, $"a label of {model.ClassCount} classes (as the model was trained on)", $"{label.Type} ({classes} classes)");
    }

    /// <summary>The label column of <paramref name="schema"/>, checked; its number of classes.</summary>
    private protected abstract DataViewSchema.Column CheckLabel(DataViewSchema schema, out int classes);

    /// <summary>The estimator-side label check.</summary>
    private protected abstract void CheckLabel(SchemaShape.Column label);

    /// <summary>A reader of the class index (0-based) of the current row's label; errors name the column and the row.</summary>
    private protected abstract Func<int> MakeLabelReader(DataViewRow row, DataViewSchema.Column label, int classes);

    private protected abstract SchemaShape.Column[] GetOutputColumns(SchemaShape.Column label);

    private protected abstract TModel CreateModel(SequenceClassifierParts parts, TokenKeyMap? keys, float[] classPrior);

    private protected abstract TTransformer MakeTransformer(TModel model, DataViewSchema trainSchema);

    /// <summary>
    /// Reads the rows of <paramref name="data"/>: labels, and the raw keys (token features) or checked float frames, with
    /// each row's position for errors.
    /// </summary>
    private Rows ReadRows(IChannel ch, IDataView data, DataViewSchema.Column feature, DataViewSchema.Column label, SequenceClassifierInputKind kind, string what)
    {
        CheckLabel(data.Schema, out int classes);
        var rows = new Rows(kind == SequenceClassifierInputKind.Tokens ? new List<ulong[]>() : null, kind == SequenceClassifierInputKind.Frames ? new List<float[]>() : null, new List<int>(), new List<long>());
        using var cursor = data.GetRowCursor(new[] { feature, label });
        var readLabel = MakeLabelReader(cursor, label, classes);
        var tokenGetter = rows.Keys is null ? null : cursor.GetGetter<VBuffer<uint>>(feature);
        var frameGetter = rows.Frames is null ? null : cursor.GetGetter<VBuffer<float>>(feature);
        VBuffer<uint> keys = default;
        VBuffer<float> values = default;
        while (cursor.MoveNext())
        {
            Host.CheckAlive();
            rows.Labels.Add(readLabel());
            rows.Positions.Add(cursor.Position);
            if (tokenGetter is not null)
            {
                tokenGetter(ref keys);
                var row = new ulong[keys.Length];
                int i = 0;
                foreach (var key in keys.DenseValues()) row[i++] = key;
                rows.Keys!.Add(row);
            }
            else
            {
                frameGetter!(ref values);
                rows.Frames!.Add(SequenceClassifierFeatureColumn.Frames(Host, values, Options.FrameSize, FeatureColumnName, cursor.Position));
            }
        }
        ch.Trace($"Read {rows.Labels.Count} rows of {what}.");
        return rows;
    }

    /// <summary>
    /// The examples of <paramref name="rows"/>: token keys through <paramref name="keys"/> (a row left with no token is
    /// dropped, or an error when the map is strict), frames as they are.
    /// </summary>
    private Examples ToExamples(Rows rows, TokenKeyMap? keys, string what)
    {
        if (rows.Frames is not null) return new Examples(null, rows.Frames, rows.Labels.ToArray());
        var tokens = new List<int[]>(rows.Keys!.Count);
        var labels = new List<int>(rows.Keys.Count);
        var ids = new List<int>();
        for (int r = 0; r < rows.Keys.Count; r++)
        {
            ids.Clear();
            keys!.AppendRow(Host, rows.Keys[r], ids, FeatureColumnName, rows.Positions[r], what);
            if (ids.Count == 0)
            {
                if (keys.UnknownTokens == UnknownTokenHandling.Strict)
                    throw Host.Except($"Column '{FeatureColumnName}', row {rows.Positions[r]} ({what}): the token sequence is empty. The trainer's UnknownTokens = Strict needs at least one token per row; " +
                                      "filter such rows out, or use UnknownTokens = MapToUnknown (the default) or Skip, which leave them out of training.");
                continue;
            }
            tokens.Add(ids.ToArray());
            labels.Add(rows.Labels[r]);
        }
        return new Examples(tokens, null, labels.ToArray());
    }

    /// <summary>Occurrences of each valid key (1..<paramref name="keyCount"/>) in <paramref name="rows"/>.</summary>
    private static Dictionary<ulong, long> CountKeys(List<ulong[]> rows, ulong keyCount)
    {
        var counts = new Dictionary<ulong, long>();
        foreach (var row in rows)
            foreach (var key in row)
                if (key >= 1 && key <= keyCount) counts[key] = counts.GetValueOrDefault(key) + 1;
        return counts;
    }

    private sealed record Rows(List<ulong[]>? Keys, List<float[]>? Frames, List<int> Labels, List<long> Positions);

    private sealed record Examples(List<int[]>? Tokens, List<float[]>? Frames, int[] Labels);
}
