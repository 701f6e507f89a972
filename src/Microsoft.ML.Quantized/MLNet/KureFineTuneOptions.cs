namespace Microsoft.ML.Quantized;

/// <summary>
/// Options of <see cref="KureFineTuneEstimator"/>: KURE fine-tuning (Shkolnik et al., "Robust Quantization: One Model
/// to Rule Them All", NeurIPS 2020) of a fitted <see cref="QuantizedRecurrentLanguageModelTransformer"/>. The defaults
/// are the paper's: Adam at learning rate 1e-3, <see cref="KureOptions.Lambda"/> 1.0, <see cref="KureOptions.Target"/>
/// 1.8 (uniform), here for one epoch.
/// </summary>
public sealed class KureFineTuneOptions
{
    /// <summary>The kurtosis term: weight, target and which tensors. Default <c>new KureOptions()</c> (lambda 1.0, target 1.8, recurrent weights).</summary>
    public KureOptions Kure { get; set; } = new();

    /// <summary>Passes over the fine-tuning data, at least 1. Default 1.</summary>
    public int Epochs { get; set; } = 1;

    /// <summary>Adam learning rate, finite and &gt; 0. Default 1e-3 (the paper's fine-tuning rate).</summary>
    public double LearningRate { get; set; } = 1e-3;

    /// <summary>Parallel token streams per step, at least 1. Default 20 (the library's batch); the BPTT window is the model's own.</summary>
    public int BatchSize { get; set; } = 20;

    /// <summary>
    /// Seed of every random source of fine-tuning. Null (default) takes the seed of the <see cref="MLContext"/>, as
    /// <see cref="QuantizedRecurrentLanguageModelOptions.Seed"/> does.
    /// </summary>
    public int? Seed { get; set; }

    /// <summary>Optional validation data with the same token column: its loss is computed after every epoch. Default null.</summary>
    public IDataView? ValidationData { get; set; }

    /// <summary>Receives fine-tuning progress (as well as ML.NET's log). Default null.</summary>
    public IProgress<TrainingProgress>? Progress { get; set; }

    /// <summary>Cancels fine-tuning. Default none.</summary>
    public CancellationToken CancellationToken { get; set; }

    /// <summary>Copies these options (<see cref="Kure"/> deeply; validation data and progress by reference).</summary>
    public KureFineTuneOptions Clone()
    {
        var copy = (KureFineTuneOptions)MemberwiseClone();
        copy.Kure = Kure?.Clone()!;
        return copy;
    }
}
