using Microsoft.ML.Runtime;
using TorchSharp;

namespace Microsoft.ML.Quantized;

/// <summary>
/// KURE fine-tuning (Shkolnik et al. 2020) of a fitted quantized sequence classifier (the prediction transformer of
/// <c>mlContext.BinaryClassification.Trainers.QuantizedLstm/QuantizedGru</c> or their multiclass twins): Fit reads the
/// features and label columns as the trainer reads them, continues training a copy of the classifier with the kurtosis
/// term <c>Lambda * mean (Kurt(W) - Target)^2</c> added to the loss (Adam), and returns a new prediction transformer of
/// the same kind (LSTM or GRU, same quantizer, features column and settings), savable with <c>mlContext.Model.Save</c>
/// and usable in pipelines like the original. The source model is left as it is. Create it with
/// <c>mlContext.Transforms.KureFineTune(classifier, ...)</c>.
/// </summary>
/// <remarks>
/// The data must match the model: the same features column (token keys of the same key type, or float frames) and a
/// label of the same number of classes. The source model does not score while it is being copied and fine-tuned (they
/// share a lock). The new model's history is the source's followed by the fine-tuning epochs.
/// </remarks>
/// <typeparam name="TTransformer">The prediction transformer fine-tuned and returned.</typeparam>
/// <typeparam name="TModel">Its model parameters.</typeparam>
public sealed class KureClassifierFineTuneEstimator<TTransformer, TModel> : IEstimator<TTransformer>
    where TTransformer : ISingleFeaturePredictionTransformer<TModel>
    where TModel : SequenceClassifierModelParameters
{
    private readonly TModel _model;
    private readonly QuantizedSequenceTrainerBase<TTransformer, TModel> _trainer;
    private readonly IReadOnlyList<double> _lambdas;
    private readonly QuantizerOptions _searchQuantizer;

    /// <param name="env">The ML.NET environment.</param>
    /// <param name="model">The classifier to fine-tune.</param>
    /// <param name="labelColumnName">The label column of the fine-tuning data.</param>
    /// <param name="options">Fine-tuning options (copied; null = defaults).</param>
    /// <param name="createTrainer">The trainer of <typeparamref name="TModel"/> for trainer options and a cell kind; it reads the data and fine-tunes.</param>
    internal KureClassifierFineTuneEstimator(IHostEnvironment env, TModel model, string labelColumnName, KureFineTuneOptions? options,
        Func<SequenceClassifierTrainerOptions, RecurrentCellKind, QuantizedSequenceTrainerBase<TTransformer, TModel>> createTrainer)
    {
        Contracts.CheckValue(env, nameof(env));
        var host = env.Register("KureFineTune");
        host.CheckValue(model, nameof(model));
        host.CheckNonEmpty(labelColumnName, nameof(labelColumnName));
        var checkedOptions = KureFineTuneOptions.Checked(host, options);
        _lambdas = checkedOptions.Lambdas;
        _searchQuantizer = checkedOptions.SearchQuantizer;
        var (classifierOptions, device) = model.UseClassifier(c => (c.Options, c.Network.parameters().First().device));
        var training = checkedOptions.Training(new TrainingOptions().SequenceLength); // classifiers read whole sequences: the window is unused
        training.Device = device.type == DeviceType.CUDA ? $"cuda:{device.index}" : "cpu";
        _model = model;
        _trainer = createTrainer(new SequenceClassifierTrainerOptions
        {
            Model = classifierOptions,
            Training = training,
            LabelColumnName = labelColumnName,
            FeatureColumnName = model.FeatureColumnName,
            FrameSize = model.FrameSize,
            ValidationData = checkedOptions.ValidationData,
            Seed = checkedOptions.Seed,
            Progress = checkedOptions.Progress,
            CancellationToken = checkedOptions.CancellationToken,
            KeepTrainingWeights = model.KeepTrainingWeights,
        }, classifierOptions.Recurrent.Cell);
    }

    /// <summary>The features column read (the model's own).</summary>
    public string FeatureColumnName => _trainer.FeatureColumnName;

    /// <summary>The label column read.</summary>
    public string LabelColumnName => _trainer.LabelColumnName;

    /// <summary>Fine-tunes a copy of the classifier on the features and label columns of <paramref name="input"/>.</summary>
    public TTransformer Fit(IDataView input) => _trainer.FineTune(input, _model, _lambdas, _searchQuantizer);

    /// <summary>The schema after the fine-tuned transformer: the input plus ML.NET's classifier output columns.</summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema) => _trainer.GetOutputSchema(inputSchema);
}
