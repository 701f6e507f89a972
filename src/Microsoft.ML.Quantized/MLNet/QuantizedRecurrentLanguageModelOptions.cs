namespace Microsoft.ML.Quantized;

/// <summary>
/// Options of <see cref="QuantizedRecurrentLanguageModelEstimator"/>: the network (<see cref="Model"/>: cell, hidden
/// size, layers, weight and activation quantizers and bits, slopes, normalization, embedding), how it is trained
/// (<see cref="Training"/>: epochs, batch size, BPTT window, optimizer, learning rate, device, checkpoint folder)
/// and the ML.NET-specific settings below. The core option classes are reused as they are; their documented
/// defaults apply (an LSTM of 256 units, float weights, 6 epochs of SGD at learning rate 20: the PTB recipe).
/// </summary>
/// <remarks>
/// <see cref="QuantizedCatalog"/>'s <c>QuantizedLstm</c> and <c>QuantizedGru</c> set
/// <see cref="QuantizedRecurrentOptions.Cell"/> themselves; the options object passed in is copied, never changed.
/// </remarks>
public sealed class QuantizedRecurrentLanguageModelOptions
{
    /// <summary>The network: recurrent stack (cell, <c>HiddenSize</c>, <c>Layers</c>, <c>WeightQuantizer</c>,
    /// <c>ActivationQuantizer</c>, <c>Slopes</c>, <c>Normalization</c>), embedding width and dropout.</summary>
    public LanguageModelOptions Model { get; set; } = new();

    /// <summary>Training: epochs, batch size, BPTT window, optimizer, learning rate and schedule, clipping, device,
    /// checkpoint folder. <see cref="TrainingOptions.Seed"/> is not used here: see <see cref="Seed"/>.</summary>
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
    /// Drop missing keys (key 0, e.g. words that <c>MapValueToKey</c> did not know) and keys never seen in training
    /// from the sequences, in training and in scoring. Default false: such a key is an error naming the column and the row.
    /// </summary>
    public bool SkipUnknownKeys { get; set; }

    /// <summary>
    /// Accept rows whose sequence is empty (after <see cref="SkipUnknownKeys"/>): training skips them; scoring gives
    /// them the state after the start token and a perplexity of NaN. Default false: an empty row is an error naming
    /// the column and the row.
    /// </summary>
    public bool AllowEmptySequences { get; set; }

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
