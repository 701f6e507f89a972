using Microsoft.ML.Runtime;

namespace Microsoft.ML.Quantized;

/// <summary>
/// Options of <see cref="KureFineTuneEstimator"/> and <see cref="KureClassifierFineTuneEstimator{TTransformer, TModel}"/>:
/// KURE fine-tuning (Shkolnik et al., "Robust Quantization: One Model to Rule Them All", NeurIPS 2020) of a fitted
/// <see cref="QuantizedRecurrentLanguageModelTransformer"/> or quantized sequence classifier. The defaults
/// are the paper's: Adam at learning rate 1e-3, <see cref="KureOptions.Lambda"/> 1.0, <see cref="KureOptions.Target"/>
/// 1.8 (uniform), here for one epoch.
/// </summary>
public sealed class KureFineTuneOptions
{
    /// <summary>The kurtosis term: weight, target and which tensors. Default <c>new KureOptions()</c> (lambda 0.01, target 1.8, recurrent weights).</summary>
    public KureOptions Kure { get; set; } = new();

    /// <summary>Passes over the fine-tuning data, at least 1. Default 1.</summary>
    public int Epochs { get; set; } = 1;

    /// <summary>Adam learning rate, finite and &gt; 0. Default 1e-3 (the paper's fine-tuning rate).</summary>
    public double LearningRate { get; set; } = 1e-3;

    /// <summary>
    /// Examples per step, at least 1: parallel token streams for a language model (the BPTT window is the model's own),
    /// sequences for a classifier. Default 20 (the library's batch).
    /// </summary>
    public int BatchSize { get; set; } = 20;

    /// <summary>
    /// Seed of every random source of fine-tuning. Null (default) takes the seed of the <see cref="MLContext"/>, as
    /// <see cref="QuantizedRecurrentLanguageModelOptions.Seed"/> does.
    /// </summary>
    public int? Seed { get; set; }

    /// <summary>Optional validation data with the same columns (token column; or features and label): its loss is computed after every epoch. Default null.</summary>
    public IDataView? ValidationData { get; set; }

    /// <summary>Receives fine-tuning progress (as well as ML.NET's log). Default null.</summary>
    public IProgress<TrainingProgress>? Progress { get; set; }

    /// <summary>Cancels fine-tuning. Default none.</summary>
    public CancellationToken CancellationToken { get; set; }

    /// <summary>
    /// A copy of <paramref name="options"/> (null = defaults), checked: an ML.NET user-argument error names the option,
    /// the bad value and the fix.
    /// </summary>
    internal static KureFineTuneOptions Checked(IExceptionContext ectx, KureFineTuneOptions? options)
    {
        var copy = options?.Clone() ?? new KureFineTuneOptions();
        ectx.CheckUserArg(copy.Kure is not null, "KureFineTuneOptions.Kure", "KureFineTuneOptions.Kure must not be null; use new KureOptions() for the paper's settings.");
        if (copy.Epochs < 1)
            throw ectx.ExceptUserArg("KureFineTuneOptions.Epochs", $"KureFineTuneOptions.Epochs must be at least 1; got {copy.Epochs}.");
        if (!double.IsFinite(copy.LearningRate) || copy.LearningRate <= 0)
            throw ectx.ExceptUserArg("KureFineTuneOptions.LearningRate", $"KureFineTuneOptions.LearningRate must be a finite number > 0; got {copy.LearningRate}. The paper fine-tunes with Adam at 1e-3.");
        if (copy.BatchSize < 1)
            throw ectx.ExceptUserArg("KureFineTuneOptions.BatchSize", $"KureFineTuneOptions.BatchSize must be at least 1; got {copy.BatchSize}.");
        try
        {
            OptionsValidator.Validate(copy.Kure!);
        }
        catch (ArgumentException e)
        {
            throw ectx.ExceptUserArg(e.ParamName ?? "KureFineTuneOptions.Kure", e.Message);
        }
        return copy;
    }

    /// <summary>
    /// The fine-tuning run these options describe (Adam, no decay; see <see cref="KurtosisFineTuning.Training"/>) with
    /// <paramref name="sequenceLength"/> as the BPTT window and <see cref="Kure"/> as the kurtosis term; the seed is set by the caller.
    /// </summary>
    internal TrainingOptions Training(int sequenceLength)
    {
        var training = KurtosisFineTuning.Training(Epochs, LearningRate, sequenceLength);
        training.BatchSize = BatchSize;
        training.Kure = Kure.Clone();
        return training;
    }

    /// <summary>Copies these options (<see cref="Kure"/> deeply; validation data and progress by reference).</summary>
    public KureFineTuneOptions Clone()
    {
        var copy = (KureFineTuneOptions)MemberwiseClone();
        copy.Kure = Kure?.Clone()!;
        return copy;
    }
}
