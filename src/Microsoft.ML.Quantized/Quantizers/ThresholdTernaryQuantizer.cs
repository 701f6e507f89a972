using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized;

/// <summary>
/// <see cref="QuantizerKind.ThresholdTernary"/>: HitNet's threshold ternary quantization (TTQ; Wang et al., NeurIPS 2018,
/// after Li et al.'s TWN): <c>q(w) = alpha * sign(w) * 1{|w| &gt; delta}</c> with the threshold
/// <c>delta = theta * E|w|</c> and <c>alpha = E(|w_i| : |w_i| &gt; delta)</c>, the mean magnitude of the kept weights,
/// per tensor or per row (see <see cref="TernaryQuantizer"/>). Theta defaults to 0.7
/// (<see cref="QuantizerRegistry.DefaultTernaryThreshold"/>, TWN's approximate optimum delta = 0.7 E|w|, at which this rule
/// is TWN's) and is set by
/// <see cref="QuantizerOptions.TernaryThreshold"/> or the name (<c>ttq-theta0.5</c>).
/// With <see cref="QuantizerOptions.TernaryThresholdFromMaximum"/> (<c>ttq-max</c>) the threshold is
/// <c>delta = theta * max|w|</c>, theta default 0.05: the threshold form of Zhu et al. 2017 ("Trained Ternary
/// Quantization", t = 0.05) with the mean-magnitude scale above, not Zhu et al.'s trained positive and negative
/// scales (that method is <see cref="TrainedTernaryQuantizer"/>, <c>zttq</c>). The maximum form is the
/// rule <c>ttq</c> models saved before the option existed were trained with.
/// </summary>
internal sealed class ThresholdTernaryQuantizer : TernaryQuantizer
{
    private readonly bool _fromMaximum;

    /// <summary>Creates the quantizer.</summary>
    /// <param name="perRow">One threshold and alpha per row (output channel) instead of one per tensor.</param>
    /// <param name="stepSizeMultiplier">Multiplies alpha (1 = unchanged); the threshold is unchanged.</param>
    /// <param name="theta">Threshold factor; 0 = the default of the form (0.7 of the mean, 0.05 of the maximum).</param>
    /// <param name="fromMaximum">Threshold from max |w| (Zhu et al.'s form) instead of E|w| (HitNet's).</param>
    /// <param name="gates">One threshold and alpha per block of rows, the gates a recurrent matrix stacks (1 = per tensor or per row).</param>
    public ThresholdTernaryQuantizer(bool perRow = false, double stepSizeMultiplier = 1.0, double theta = 0, bool fromMaximum = false, int gates = 1)
        : base(nameof(ThresholdTernaryQuantizer), perRow, stepSizeMultiplier, gates)
    {
        var options = new QuantizerOptions { Kind = QuantizerKind.ThresholdTernary, TernaryThreshold = theta, TernaryThresholdFromMaximum = fromMaximum };
        QuantizerRegistry.ValidateCommon(options, nameof(theta));
        _fromMaximum = fromMaximum;
        Theta = QuantizerRegistry.EffectiveTernaryThreshold(options);
    }

    /// <summary>The threshold factor in use (the default of the form resolved).</summary>
    public double Theta { get; }

    /// <inheritdoc />
    protected override QuantizerKind Kind => QuantizerKind.ThresholdTernary;

    /// <inheritdoc />
    protected override QuantizerOptions Describe() => new()
    {
        Kind = Kind, PerRowScale = PerRow, PerGateScale = Gates > 1, StepSizeMultiplier = Multiplier, TernaryThreshold = Theta, TernaryThresholdFromMaximum = _fromMaximum,
    };

    /// <inheritdoc />
    protected override Tensor Threshold(Tensor abs)
    {
        using var theta = Theta.ToScalar();
        var dims = new long[] { 1 };
        return (_fromMaximum ? abs.amax(dims, keepdim: true) : abs.mean(dims, keepdim: true)).mul(theta);
    }
}
