using Microsoft.ML.Runtime;

namespace Microsoft.ML.Quantized;

/// <summary>
/// Options of <see cref="KureFineTuneEstimator"/> and <see cref="KureClassifierFineTuneEstimator{TTransformer, TModel}"/>:
/// KURE fine-tuning (Shkolnik et al., "Robust Quantization: One Model to Rule Them All", NeurIPS 2020) of a fitted
/// <see cref="QuantizedRecurrentLanguageModelTransformer"/> or quantized sequence classifier. The defaults are the
/// paper's (Adam at learning rate 1e-3, <see cref="KureOptions.Target"/> 1.8, the uniform distribution's kurtosis), here
/// for one epoch, except <see cref="KureOptions.Lambda"/>: 0.01, which this library's measurements support (the paper's
/// 1.0 over-regularizes its language models), or a short search over <see cref="LambdaCandidates"/>.
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

    /// <summary>
    /// Lambdas to choose from, each finite and &gt;= 0. When set, Fit fine-tunes one copy of the model per candidate
    /// (with <see cref="Kure"/>'s other settings), quantizes each after training with <see cref="SearchQuantizer"/>, and
    /// keeps the one whose quantized copy has the lowest loss on <see cref="ValidationData"/> (required then); the
    /// MLContext's log names each candidate's loss and the choice. Default null: fine-tune once with
    /// <see cref="KureOptions.Lambda"/>. E.g. <c>[0.003, 0.01, 0.03, 0.1]</c>.
    /// </summary>
    public double[]? LambdaCandidates { get; set; }

    /// <summary>
    /// The post-training quantizer a lambda search scores each candidate under. Default 4-bit uniform with one max step
    /// per tensor (<c>uniform4</c>), a setting where KURE's effect shows (docs/benchmarks.md).
    /// </summary>
    public QuantizerOptions SearchQuantizer { get; set; } = new() { Kind = QuantizerKind.Uniform, Bits = 4 };

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
        if (copy.LambdaCandidates is { } candidates)
        {
            if (candidates.Length == 0 || candidates.Any(l => !double.IsFinite(l) || l < 0))
                throw ectx.ExceptUserArg("KureFineTuneOptions.LambdaCandidates", $"KureFineTuneOptions.LambdaCandidates must hold at least one finite lambda >= 0; got [{string.Join(", ", candidates)}].");
            if (copy.ValidationData is null)
                throw ectx.ExceptUserArg("KureFineTuneOptions.ValidationData", "A lambda search (KureFineTuneOptions.LambdaCandidates) scores each candidate on KureFineTuneOptions.ValidationData: set it.");
        }
        ectx.CheckUserArg(copy.SearchQuantizer is not null, "KureFineTuneOptions.SearchQuantizer", "KureFineTuneOptions.SearchQuantizer must not be null.");
        try
        {
            OptionsValidator.Validate(copy.Kure!);
            if (copy.LambdaCandidates is not null) Requantization.Checked(copy.SearchQuantizer!, "KureFineTuneOptions.SearchQuantizer");
        }
        catch (ArgumentException e)
        {
            throw ectx.ExceptUserArg(e.ParamName ?? "KureFineTuneOptions.Kure", e.Message);
        }
        return copy;
    }

    /// <summary>The lambdas to fine-tune with: the candidates, or <see cref="Kure"/>'s own.</summary>
    internal IReadOnlyList<double> Lambdas => LambdaCandidates ?? [Kure.Lambda];

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
        copy.LambdaCandidates = (double[]?)LambdaCandidates?.Clone();
        copy.SearchQuantizer = SearchQuantizer?.Clone()!;
        return copy;
    }
}
