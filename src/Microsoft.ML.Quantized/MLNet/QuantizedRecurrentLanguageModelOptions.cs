namespace Microsoft.ML.Quantized;

/// <summary>
/// Options of <see cref="QuantizedRecurrentLanguageModelEstimator"/>: the network (<see cref="Model"/>: cell, hidden
/// size, layers, weight and activation quantizers and bits, slopes, normalization, embedding), how it is trained
/// (<see cref="Training"/>: epochs, batch size, BPTT window, optimizer, learning rate, device, checkpoint folder)
/// and the ML.NET-specific settings below. The network defaults to the catalog overloads' defaults: one layer of 128
/// units, ternary weights (TWN) with weight normalization; training to <see cref="TrainingOptions"/>'s (6 epochs of SGD
/// at learning rate 20: the PTB recipe).
/// </summary>
/// <remarks>
/// <see cref="QuantizedCatalog"/>'s <c>QuantizedLstm</c> and <c>QuantizedGru</c> set
/// <see cref="QuantizedRecurrentOptions.Cell"/> themselves; the options object passed in is copied, never changed.
/// </remarks>
public sealed class QuantizedRecurrentLanguageModelOptions
{
    /// <summary>The network: recurrent stack (cell, <c>HiddenSize</c>, <c>Layers</c>, <c>WeightQuantizer</c>,
    /// <c>ActivationQuantizer</c>, <c>Slopes</c>, <c>Normalization</c>), embedding width and dropout. Default: 1 x 128,
    /// ternary (TWN) weights, weight normalization; the other settings are <see cref="LanguageModelOptions"/>' defaults.</summary>
    public LanguageModelOptions Model { get; set; } = new() { Recurrent = EstimatorDefaults.Recurrent() };

    /// <summary>Training: epochs, batch size, BPTT window, optimizer, learning rate and schedule, clipping, device,
    /// checkpoint folder. <see cref="TrainingOptions.Seed"/> is not read here (a value other than its default is rejected): see <see cref="Seed"/>.</summary>
    public TrainingOptions Training { get; set; } = new();

    /// <summary>
    /// Seed of every random source of training (initialization, dropout, stochastic quantizers). Null (default)
    /// takes the seed of the <see cref="MLContext"/> (<c>new MLContext(seed: s)</c> gives the same model on every
    /// run, whatever else the pipeline holds); an <see cref="MLContext"/> created without a seed draws one from its
    /// random source, so unseeded runs differ, as with ML.NET's own trainers.
    /// </summary>
    public int? Seed { get; set; }

    /// <summary>
    /// Name of the per-row perplexity column. Null (default) uses the output column name followed by
    /// <c>Perplexity</c>, e.g. <c>FeaturesPerplexity</c>.
    /// </summary>
    public string? PerplexityColumnName { get; set; }

    /// <summary>
    /// Optional validation data with the same token column: its loss is computed after every epoch and drives the
    /// learning-rate decay and early stopping of <see cref="Training"/>. Default null (decay follows the training loss).
    /// </summary>
    public IDataView? ValidationData { get; set; }

    /// <summary>
    /// What happens to a token key the model has no embedding for (a word unseen in training, key 0 from
    /// <c>MapValueToKey</c>) and to a row with no tokens. Default <see cref="UnknownTokenHandling.MapToUnknown"/>: such
    /// keys read and predict a learned <c>&lt;unk&gt;</c> token, and an empty row gets the state after the row
    /// separator and a perplexity of NaN. <see cref="UnknownTokenHandling.Strict"/> makes either an error naming the
    /// column and the row.
    /// </summary>
    public UnknownTokenHandling UnknownTokens { get; set; } = UnknownTokenHandling.MapToUnknown;

    /// <summary>
    /// With <see cref="UnknownTokenHandling.MapToUnknown"/>: training keys seen fewer times than this are trained as
    /// <c>&lt;unk&gt;</c> (rare words stand in for the unseen words it will meet) and get no token of their own. At
    /// least 1 (1 = every training key is known and <c>&lt;unk&gt;</c> is never trained). Default 2.
    /// </summary>
    public int MinimumTokenCount { get; set; } = 2;

    /// <summary>
    /// Save the float training ("shadow") weights into the model file beside the packed weights, so that a loaded model
    /// can be KURE fine-tuned or re-quantized. Default false: the saved model holds only the packed low-bit weights it
    /// scores with (a ternary model's recurrent weights take about 2 bits each instead of 32); the transformer Fit returns
    /// can still be fine-tuned and re-quantized before it is saved.
    /// </summary>
    public bool KeepTrainingWeights { get; set; }

    /// <summary>
    /// Receives training progress (as well as ML.NET's log, which gets one line per epoch and every
    /// <see cref="TrainingOptions.ProgressInterval"/> steps). Default null.
    /// </summary>
    public IProgress<TrainingProgress>? Progress { get; set; }

    /// <summary>Cancels training. Default none.</summary>
    public CancellationToken CancellationToken { get; set; }

    /// <summary>Copies these options (the model and training options deeply; validation data and progress by reference).</summary>
    public QuantizedRecurrentLanguageModelOptions Clone()
    {
        var copy = (QuantizedRecurrentLanguageModelOptions)MemberwiseClone();
        copy.Model = Model?.Clone()!;
        copy.Training = Training?.Clone()!;
        return copy;
    }
}
