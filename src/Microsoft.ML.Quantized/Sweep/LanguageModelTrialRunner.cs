namespace Microsoft.ML.Quantized.Sweep;

/// <summary>
/// Trains a <see cref="QuantizedLanguageModel"/> per trial: the template options with the trial's recurrent
/// configuration, learning rate, KURE setting (<see cref="TrainingOptions.Kure"/> = <see cref="Kure"/> when
/// <see cref="QuantizationConfiguration.UseKure"/>), epoch budget, seed and checkpoint folder. A promoted trial resumes
/// from its checkpoint. Reports <c>perplexity</c>, <c>cross-entropy</c> and <c>bits-per-token</c> on the validation
/// tokens and the packed size; saves the model as <c>model.qlm</c> in the trial's folder
/// (<see cref="TrialResult.ModelPath"/>; load it with <see cref="QuantizedLanguageModel.Load(Stream, string)"/> from
/// <see cref="TrialResult.OpenModel"/>, which also reads the models a sweep in a temporary folder keeps in memory). ML.NET
/// users get one over a token-key column from the estimator: <c>mlContext.Transforms.QuantizedLstm(...).CreateTrialRunner(train, valid)</c>.
/// </summary>
public sealed class LanguageModelTrialRunner : ISweepTrialRunner
{
    /// <summary>Metric name of the mean validation cross-entropy (nats per token).</summary>
    public const string CrossEntropy = "cross-entropy";

    /// <summary>Metric name of the validation cross-entropy in bits per token (bits per character for character models).</summary>
    public const string BitsPerToken = "bits-per-token";

    /// <summary>File name of each trial's saved model.</summary>
    public const string ModelFileName = "model.qlm";

    private readonly Vocabulary _vocabulary;
    private readonly int[] _training;
    private readonly int[] _validation;
    private readonly LanguageModelOptions _model;
    private readonly TrainingOptions _trainingOptions;

    /// <summary>
    /// A runner over token ids. <paramref name="model"/> and <paramref name="training"/> are templates (default
    /// <c>new()</c>; the trial sets the recurrent configuration, learning rate, KURE, epochs, seed and checkpoint
    /// folder). They are validated here; the sweep's choices are validated when proposed.
    /// </summary>
    public LanguageModelTrialRunner(Vocabulary vocabulary, int[] trainingTokens, int[] validationTokens,
        LanguageModelOptions? model = null, TrainingOptions? training = null)
    {
        _vocabulary = vocabulary ?? throw new ArgumentNullException(nameof(vocabulary));
        _training = trainingTokens ?? throw new ArgumentNullException(nameof(trainingTokens));
        _validation = validationTokens ?? throw new ArgumentNullException(nameof(validationTokens));
        if (_validation.Length < 2)
            throw new ArgumentException("validationTokens needs at least 2 tokens: the sweep ranks trials by validation perplexity.", nameof(validationTokens));
        _model = model?.Clone() ?? new LanguageModelOptions();
        _trainingOptions = training?.Clone() ?? new TrainingOptions();
        OptionsValidator.Validate(_model);
        OptionsValidator.Validate(_trainingOptions);
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

        using var trained = QuantizedLanguageModel.Train(_vocabulary, _training, _validation, model, training, null, cancellationToken);
        // Training validated after every epoch and kept the best epoch's weights: its validation loss is the model's,
        // so the validation set is not run a second time.
        var losses = trained.History.Select(e => e.ValidationLoss).Where(double.IsFinite).ToArray();
        double crossEntropy = losses.Length > 0 ? losses.Min() : trained.Evaluate(_validation).CrossEntropy;
        var path = Path.Combine(context.CheckpointDirectory, ModelFileName);
        trained.Save(path);
        return new TrialReport(new Dictionary<string, double>
        {
            [TrialReport.Perplexity] = Math.Exp(crossEntropy),
            [CrossEntropy] = crossEntropy,
            [BitsPerToken] = crossEntropy / Math.Log(2),
        }, trained.SizeReport().PackedBytes) { ModelPath = path };
    }
}
