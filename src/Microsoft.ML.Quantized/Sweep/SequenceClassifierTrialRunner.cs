namespace Microsoft.ML.Quantized.Sweep;

/// <summary>
/// Trains a <see cref="QuantizedSequenceClassifier"/> per trial, on token sequences or on float sequences read as
/// frames: the template options with the trial's recurrent configuration, learning rate, KURE setting
/// (<see cref="TrainingOptions.Kure"/> = <see cref="Kure"/> when <see cref="QuantizationConfiguration.UseKure"/>),
/// epoch budget, seed and checkpoint folder; a promoted trial resumes from its checkpoint. Reports <c>accuracy</c>,
/// <c>log-loss</c> and, for two classes, <c>auc</c> on the validation set, and the packed size; saves the model as
/// <c>model.qsc</c> in the trial's folder (load it with <see cref="QuantizedSequenceClassifier.Load(Stream, string)"/> from
/// <see cref="TrialResult.OpenModel"/>, or from <see cref="TrialResult.ModelPath"/> when the sweep keeps its files). ML.NET
/// users get one over their columns from the trainer: <c>trainer.CreateTrialRunner(train, valid)</c>.
/// Optimize with <see cref="SweepObjective.MaximizeAccuracy"/> or <see cref="SweepObjective.MaximizeAuc"/>.
/// </summary>
/// <remarks>
/// The data are checked once, when the runner is made (empty sequences, tokens outside the vocabulary, NaN, labels
/// outside the classes), so a bad data set fails at once instead of failing every trial.
/// </remarks>
public sealed class SequenceClassifierTrialRunner : ISweepTrialRunner
{
    /// <summary>Metric name of the validation log-loss (nats per example, lower is better).</summary>
    public const string LogLoss = "log-loss";

    /// <summary>File name of each trial's saved model.</summary>
    public const string ModelFileName = "model.qsc";

    private readonly SequenceClassifierInputKind _kind;
    private readonly SequenceClassifierData _training;
    private readonly SequenceClassifierData _validation;
    private readonly SequenceClassifierOptions _model;
    private readonly TrainingOptions _trainingOptions;

    /// <summary>
    /// A runner over token sequences (ids in [0, <see cref="SequenceClassifierOptions.VocabularySize"/>); 0 takes
    /// the largest id in the data + 1) and labels in [0, <see cref="SequenceClassifierOptions.ClassCount"/>).
    /// <paramref name="model"/> and <paramref name="training"/> are templates (default <c>new()</c> and
    /// <see cref="QuantizedSequenceClassifier.DefaultTrainingOptions"/>; the trial sets the recurrent configuration,
    /// learning rate, KURE, epochs, seed and checkpoint folder).
    /// </summary>
    /// <exception cref="ArgumentException">Bad data (the message names the argument and the example) or bad options.</exception>
    public SequenceClassifierTrialRunner(IReadOnlyList<int[]> trainingSequences, int[] trainingLabels,
        IReadOnlyList<int[]> validationSequences, int[] validationLabels,
        SequenceClassifierOptions? model = null, TrainingOptions? training = null)
        : this(SequenceClassifierInputKind.Tokens, model, training, trainingLabels, validationLabels, m =>
            (SequenceClassifierData.FromTokens(trainingSequences, trainingLabels, m.VocabularySize, m.ClassCount, nameof(trainingSequences), nameof(trainingLabels)),
             SequenceClassifierData.FromTokens(validationSequences, validationLabels, m.VocabularySize, m.ClassCount, nameof(validationSequences), nameof(validationLabels))))
    {
    }

    /// <summary>
    /// A runner over float sequences, each read as frames of <see cref="SequenceClassifierOptions.FrameSize"/> values
    /// (sequential MNIST: 784 pixels with frame size 28), and labels in [0, <see cref="SequenceClassifierOptions.ClassCount"/>).
    /// Templates as in the token constructor.
    /// </summary>
    /// <exception cref="ArgumentException">Bad data (NaN, a length that is not a multiple of the frame size, ...) or bad options.</exception>
    public SequenceClassifierTrialRunner(IReadOnlyList<float[]> trainingSequences, int[] trainingLabels,
        IReadOnlyList<float[]> validationSequences, int[] validationLabels,
        SequenceClassifierOptions? model = null, TrainingOptions? training = null)
        : this(SequenceClassifierInputKind.Frames, model, training, trainingLabels, validationLabels, m =>
            (SequenceClassifierData.FromFrames(trainingSequences, trainingLabels, m.FrameSize, m.ClassCount, nameof(trainingSequences), nameof(trainingLabels)),
             SequenceClassifierData.FromFrames(validationSequences, validationLabels, m.FrameSize, m.ClassCount, nameof(validationSequences), nameof(validationLabels))))
    {
    }

    private SequenceClassifierTrialRunner(SequenceClassifierInputKind kind, SequenceClassifierOptions? model, TrainingOptions? training,
        int[] trainingLabels, int[] validationLabels, Func<SequenceClassifierOptions, (SequenceClassifierData, SequenceClassifierData)> read)
    {
        ArgumentNullException.ThrowIfNull(trainingLabels);
        ArgumentNullException.ThrowIfNull(validationLabels);
        _kind = kind;
        _model = model?.Clone() ?? new SequenceClassifierOptions();
        _trainingOptions = training?.Clone() ?? QuantizedSequenceClassifier.DefaultTrainingOptions();
        OptionsValidator.Validate(_model);
        OptionsValidator.Validate(_trainingOptions);
        (_training, _validation) = read(_model);
        if (_training.Count == 0)
            throw new ArgumentException("trainingSequences is empty; the sweep needs labelled examples to train on.", "trainingSequences");
        if (_validation.Count == 0)
            throw new ArgumentException("validationSequences is empty; the sweep ranks trials by their validation metric.", "validationSequences");
        if (kind == SequenceClassifierInputKind.Tokens && _model.VocabularySize == 0)
            _model.VocabularySize = Math.Max(_training.TokenBound, _validation.TokenBound);
    }

    /// <summary>KURE settings used for trials with <see cref="QuantizationConfiguration.UseKure"/>. Default <c>new KureOptions()</c>.</summary>
    public KureOptions Kure { get; init; } = new();

    /// <inheritdoc />
    public TrialReport Run(TrialContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        var model = _model.Clone();
        model.Recurrent = context.Configuration.ToRecurrentOptions(_model.Recurrent);
        var training = context.ToTrainingOptions(_trainingOptions, Kure);
        OptionsValidator.Validate(model);

        int inputSize = _kind == SequenceClassifierInputKind.Tokens ? model.VocabularySize : model.FrameSize;
        using var trained = QuantizedSequenceClassifier.Train(_kind, inputSize, _training, _validation, model, training, null, cancellationToken);
        var evaluation = trained.Evaluate(_validation);
        var path = Path.Combine(context.CheckpointDirectory, ModelFileName);
        trained.Save(path);
        var metrics = new Dictionary<string, double>
        {
            [TrialReport.Accuracy] = evaluation.Accuracy,
            [LogLoss] = evaluation.LogLoss,
        };
        if (model.ClassCount == 2) metrics[TrialReport.Auc] = evaluation.AreaUnderRocCurve;
        return new TrialReport(metrics, trained.SizeReport().PackedBytes) { ModelPath = path };
    }
}
