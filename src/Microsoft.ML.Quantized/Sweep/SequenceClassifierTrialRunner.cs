namespace Microsoft.ML.Quantized.Sweep;

/// <summary>
/// Trains a <see cref="QuantizedSequenceClassifier"/> per trial, on token sequences or on float sequences read as
/// frames: the template options with the trial's recurrent configuration, learning rate, KURE setting
/// (<see cref="TrainingOptions.Kure"/> = <see cref="Kure"/> when <see cref="QuantizationConfiguration.UseKure"/>),
/// epoch budget, seed and checkpoint folder; a promoted trial resumes from its checkpoint. Reports <c>accuracy</c>,
/// <c>log-loss</c> and, for two classes, <c>auc</c> on the validation set, and the packed size; saves the model as
/// <c>model.qsc</c> in the trial's folder (load it with <see cref="QuantizedSequenceClassifier.Load(string, string)"/>).
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
    {
        (_model, _trainingOptions) = Templates(model, training);
        ArgumentNullException.ThrowIfNull(trainingLabels);
        ArgumentNullException.ThrowIfNull(validationLabels);
        _kind = SequenceClassifierInputKind.Tokens;
        _training = SequenceClassifierData.FromTokens(trainingSequences, trainingLabels, _model.VocabularySize, _model.ClassCount, nameof(trainingSequences), nameof(trainingLabels));
        _validation = SequenceClassifierData.FromTokens(validationSequences, validationLabels, _model.VocabularySize, _model.ClassCount, nameof(validationSequences), nameof(validationLabels));
        if (_model.VocabularySize == 0) _model.VocabularySize = Math.Max(_training.TokenBound, _validation.TokenBound);
        CheckCounts();
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
    {
        (_model, _trainingOptions) = Templates(model, training);
        ArgumentNullException.ThrowIfNull(trainingLabels);
        ArgumentNullException.ThrowIfNull(validationLabels);
        _kind = SequenceClassifierInputKind.Frames;
        _training = SequenceClassifierData.FromFrames(trainingSequences, trainingLabels, _model.FrameSize, _model.ClassCount, nameof(trainingSequences), nameof(trainingLabels));
        _validation = SequenceClassifierData.FromFrames(validationSequences, validationLabels, _model.FrameSize, _model.ClassCount, nameof(validationSequences), nameof(validationLabels));
        CheckCounts();
    }

    /// <summary>KURE settings used for trials with <see cref="QuantizationConfiguration.UseKure"/>. Default <c>new KureOptions()</c>.</summary>
    public KureOptions Kure { get; init; } = new();

    /// <inheritdoc />
    public TrialReport Run(TrialContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        var configuration = context.Configuration;
        var model = _model.Clone();
        model.Recurrent = configuration.ToRecurrentOptions(_model.Recurrent);
        var training = configuration.ToTrainingOptions(_trainingOptions);
        training.Kure = configuration.UseKure ? Kure.Clone() : null;
        training.Epochs = context.Epochs;
        training.Seed = context.Seed;
        training.CheckpointDirectory = context.CheckpointDirectory;
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

    private static (SequenceClassifierOptions, TrainingOptions) Templates(SequenceClassifierOptions? model, TrainingOptions? training)
    {
        var modelCopy = model?.Clone() ?? new SequenceClassifierOptions();
        var trainingCopy = training?.Clone() ?? QuantizedSequenceClassifier.DefaultTrainingOptions();
        OptionsValidator.Validate(modelCopy);
        OptionsValidator.Validate(trainingCopy);
        return (modelCopy, trainingCopy);
    }

    private void CheckCounts()
    {
        if (_training.Count == 0)
            throw new ArgumentException("trainingSequences is empty; the sweep needs labelled examples to train on.", "trainingSequences");
        if (_validation.Count == 0)
            throw new ArgumentException("validationSequences is empty; the sweep ranks trials by their validation metric.", "validationSequences");
    }
}
