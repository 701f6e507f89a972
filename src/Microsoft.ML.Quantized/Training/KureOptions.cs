namespace Microsoft.ML.Quantized;

/// <summary>
/// KURE, kurtosis regularization (Shkolnik et al., "Robust Quantization: One Model to Rule Them All", NeurIPS 2020).
/// Adds <c>Lambda * mean over tensors of (Kurt(W) - Target)^2</c> to the training loss (or, with <see cref="Statistic"/>,
/// of another uniformity statistic), where
/// <c>Kurt(W) = mean(((W - mu) / sigma)^4)</c> with population moments over all elements of the float shadow weight
/// <c>W</c> (or, with <see cref="PerRow"/>, of each of its rows). Pushing the weights toward a uniform distribution (kurtosis 1.8) makes one trained model hold up under
/// post-training quantization to other bit widths and under step sizes that are a few percent off.
/// Set <see cref="TrainingOptions.Kure"/> to train with it, or fine-tune with
/// <see cref="QuantizedLanguageModel.FineTuneWithKure(int[], KureOptions?, int, double, IProgress{TrainingProgress}?, CancellationToken)"/>.
/// </summary>
public sealed class KureOptions
{
    /// <summary>Kurtosis of the uniform distribution, KURE's target (9/5).</summary>
    public const double UniformKurtosis = 1.8;

    /// <summary>
    /// Weight of the kurtosis term, a finite number &gt;= 0 (0 turns the term off). Default 0.01 (<see cref="DefaultLambda"/>):
    /// on this library's language models the paper's 1.0 (chosen for ImageNet CNNs) costs float accuracy and loses at
    /// 4 bits, while 0.01 keeps float within a fraction of a percent and gives the best 4- and 3-bit models
    /// (docs/benchmarks.md, KURE lambda sections). The best value depends on the task: measure it with the samples'
    /// <c>kure --lambda-sweep</c>.
    /// </summary>
    public double Lambda { get; set; } = DefaultLambda;

    /// <summary>The default <see cref="Lambda"/>, 0.01: the value this library's measurements support (docs/benchmarks.md).</summary>
    public const double DefaultLambda = 0.01;

    /// <summary>The uniform distribution's <see cref="UniformityStatistic.AbsoluteCoefficientOfVariation"/>, 1/sqrt(3) = 0.577.</summary>
    public const double UniformAbsoluteCoefficientOfVariation = 0.57735026918962584;

    /// <summary>
    /// The value of <see cref="Statistic"/> the weights are pushed toward. Default 1.8 (<see cref="UniformKurtosis"/>, the
    /// paper's choice); a Gaussian has kurtosis 3, a Laplace 6. With <see cref="UniformityStatistic.Kurtosis"/> it must be
    /// in (1, 10] (every distribution has kurtosis &gt;= 1); with <see cref="UniformityStatistic.AbsoluteCoefficientOfVariation"/>
    /// in (0, 1] (1 is a Laplace's), e.g. <see cref="UniformAbsoluteCoefficientOfVariation"/> (uniform).
    /// </summary>
    public double Target { get; set; } = UniformKurtosis;

    /// <summary>
    /// The statistic regularized. Default <see cref="UniformityStatistic.Kurtosis"/> (KURE); with
    /// <see cref="UniformityStatistic.AbsoluteCoefficientOfVariation"/> set <see cref="Target"/> to a value of that
    /// statistic (<see cref="UniformAbsoluteCoefficientOfVariation"/> for uniform weights).
    /// </summary>
    public UniformityStatistic Statistic { get; set; } = UniformityStatistic.Kurtosis;

    /// <summary>Which weight matrices are regularized. Default <see cref="KurtosisTensors.Recurrent"/>.</summary>
    public KurtosisTensors Tensors { get; set; } = KurtosisTensors.Recurrent;

    /// <summary>
    /// Regularize each row of a weight matrix (one output unit's weights) on its own: the term of a tensor is then the mean
    /// over its rows of <c>(Kurt(row) - Target)^2</c> (a vector or a one-column matrix counts as one row). Default false,
    /// the paper's one kurtosis per tensor. A few outliers
    /// barely move a large tensor's kurtosis (one weight at 14 standard deviations adds 14^4 / n, about 0.1 for a
    /// 1200x300 matrix) yet they set its max-based step; within a row their share is as many times larger as the matrix
    /// has rows, so the per-row term works on them where the per-tensor one reaches its target around them (by making
    /// the rows bimodal). Measured in docs/benchmarks.md (the samples' <c>kure</c> command): at lambda 1 it is the form
    /// that helps the Brown word LM at 3 bits under one max step per tensor, but the per-tensor form at a small lambda
    /// (0.003-0.01) does better there, and the per-tensor form does better on the Moby Dick character LM and sequential
    /// MNIST at 3 bits.
    /// </summary>
    public bool PerRow { get; set; }

    /// <summary>Copies these options.</summary>
    public KureOptions Clone() => (KureOptions)MemberwiseClone();
}
