namespace Microsoft.ML.Quantized;

/// <summary>
/// Options of the quantized sequence-classifier trainers (<c>mlContext.BinaryClassification.Trainers.QuantizedLstm(...)</c>,
/// <c>QuantizedGru(...)</c> and their multiclass twins): the network (<see cref="Model"/>), how it is trained
/// (<see cref="Training"/>), and the ML.NET-specific settings below.
/// </summary>
/// <remarks>
/// The features column is either a vector of keys (token sequences of any length, e.g. <c>TokenizeIntoWords</c> then
/// <c>MapValueToKey</c>; keys unseen in training read a learned <c>&lt;unk&gt;</c>, see <see cref="UnknownTokens"/>) or a float vector read as frames of
/// <see cref="FrameSize"/> values (sequential MNIST: 784 steps of 1 or 28 steps of 28). The label column is
/// <see cref="bool"/> for binary classification and a key (e.g. from <c>MapValueToKey</c>) for multiclass
/// classification, whose key count is the number of classes. The catalog methods set the cell (LSTM or GRU),
/// <see cref="SequenceClassifierOptions.ClassCount"/>, <see cref="SequenceClassifierOptions.VocabularySize"/> and
/// <see cref="SequenceClassifierOptions.FrameSize"/> themselves; the options object passed in is copied, never changed.
/// </remarks>
public sealed class SequenceClassifierTrainerOptions
{
    /// <summary>
    /// The network: recurrent stack (<c>HiddenSize</c>, <c>Layers</c>, <c>WeightQuantizer</c>, <c>ActivationQuantizer</c>,
    /// <c>Normalization</c>, ...), embedding width, dropout. Its <c>ClassCount</c>, <c>VocabularySize</c>,
    /// <c>FrameSize</c> and <c>Recurrent.Cell</c> are set by the trainer. Default: 1 x 128, ternary (TWN) weights, weight
    /// normalization (as the catalog overloads); the other settings are <see cref="SequenceClassifierOptions"/>' defaults.
    /// </summary>
    public SequenceClassifierOptions Model { get; set; } = new() { Recurrent = EstimatorDefaults.Recurrent() };

    /// <summary>
    /// Training: epochs, batch size, optimizer, learning rate and schedule, clipping, early stopping
    /// (<see cref="TrainingOptions.EarlyStoppingPatience"/>, which needs <see cref="ValidationData"/>), device.
    /// Default <see cref="QuantizedSequenceClassifier.DefaultTrainingOptions"/> (Adam, 2e-3, batch 32, 10 epochs).
    /// <see cref="TrainingOptions.Seed"/> is not read here (a value other than its default is rejected): see <see cref="Seed"/>.
    /// </summary>
    public TrainingOptions Training { get; set; } = QuantizedSequenceClassifier.DefaultTrainingOptions();

    /// <summary>The label column: <see cref="bool"/> (binary) or a key type (multiclass). Default "Label".</summary>
    public string LabelColumnName { get; set; } = DefaultColumnNames.Label;

    /// <summary>The features column: a vector of keys (tokens) or of floats (frames). Default "Features".</summary>
    public string FeatureColumnName { get; set; } = DefaultColumnNames.Features;

    /// <summary>
    /// Float features: values per time step; every row's length must be a multiple of it. Default 1 (one value per
    /// step). Ignored for token features.
    /// </summary>
    public int FrameSize { get; set; } = 1;

    /// <summary>
    /// Token features: what happens to a key the model has no embedding for (a word unseen in training, key 0 from
    /// <c>MapValueToKey</c>) and to a row with no tokens. Default <see cref="UnknownTokenHandling.MapToUnknown"/>: such
    /// keys read a learned <c>&lt;unk&gt;</c> embedding, and a row with no tokens gets the class frequencies of the
    /// training labels. <see cref="UnknownTokenHandling.Strict"/> makes either an error naming the column and the row.
    /// </summary>
    public UnknownTokenHandling UnknownTokens { get; set; } = UnknownTokenHandling.MapToUnknown;

    /// <summary>
    /// Token features, with <see cref="UnknownTokenHandling.MapToUnknown"/>: training keys seen fewer times than this are
    /// trained as <c>&lt;unk&gt;</c> (rare words stand in for the unseen words it will meet) and get no embedding of their
    /// own. At least 1 (1 = every training key is known and <c>&lt;unk&gt;</c> is never trained). Default 2.
    /// </summary>
    public int MinimumTokenCount { get; set; } = 2;

    /// <summary>
    /// Save the float training ("shadow") weights into the model file beside the packed weights, so that a loaded model
    /// can be KURE fine-tuned or re-quantized. Default false: the saved model holds only the packed low-bit weights it
    /// scores with; the model Fit returns can still be fine-tuned and re-quantized before it is saved.
    /// </summary>
    public bool KeepTrainingWeights { get; set; }

    /// <summary>
    /// Optional validation data with the same columns: its loss is computed after every epoch and drives the
    /// learning-rate decay and early stopping of <see cref="Training"/>. Default null.
    /// </summary>
    public IDataView? ValidationData { get; set; }

    /// <summary>
    /// Seed of every random source of training (initialization, shuffling, dropout). Null (default) takes the seed of
    /// the <see cref="MLContext"/>, so <c>new MLContext(seed: s)</c> gives the same model on every run; an
    /// <see cref="MLContext"/> created without a seed draws one, as with ML.NET's own trainers.
    /// </summary>
    public int? Seed { get; set; }

    /// <summary>Receives training progress as well as ML.NET's log. Default null.</summary>
    public IProgress<TrainingProgress>? Progress { get; set; }

    /// <summary>Cancels training. Default none.</summary>
    public CancellationToken CancellationToken { get; set; }

    /// <summary>Copies these options (model and training options deeply; validation data and progress by reference).</summary>
    public SequenceClassifierTrainerOptions Clone()
    {
        var copy = (SequenceClassifierTrainerOptions)MemberwiseClone();
        copy.Model = Model?.Clone()!;
        copy.Training = Training?.Clone()!;
        return copy;
    }

    private static class DefaultColumnNames
    {
        public const string Label = "Label";
        public const string Features = "Features";
    }
}
