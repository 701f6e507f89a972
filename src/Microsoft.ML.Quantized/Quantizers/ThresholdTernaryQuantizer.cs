using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized;

/// <summary>
/// <see cref="QuantizerKind.ThresholdTernary"/>: the threshold ternary quantization (TTQ) that HitNet (Wang et al.,
/// NeurIPS 2018) applies to weights. Threshold: <c>delta = theta * max |w|</c> with <c>theta = 0.05</c> by default,
/// the rule and value of Zhu et al., "Trained Ternary Quantization" (ICLR 2017, t = 0.05). Scale: the mean of the
/// kept |w| (see <see cref="TernaryQuantizer"/>) instead of TTQ's trained positive/negative scales, so the code is
/// symmetric and packs in 2 bits.
/// Caveat: HitNet's own section on TTQ could not be consulted when this was written, so its exact threshold and
/// scale are not confirmed here; theta is a constructor argument so the rule can be matched without changing callers.
/// </summary>
internal sealed class ThresholdTernaryQuantizer : TernaryQuantizer
{
    /// <summary>Default theta: delta = 0.05 * max |w| (Zhu et al. 2017, t = 0.05).</summary>
    public const double DefaultTheta = 0.05;

    /// <summary>Creates the quantizer.</summary>
    /// <param name="perRow">One threshold and alpha per row (output channel) instead of one per tensor.</param>
    /// <param name="stepSizeMultiplier">Multiplies alpha (1 = unchanged); the threshold is unchanged.</param>
    /// <param name="theta">Threshold as a fraction of max |w|, in (0, 1).</param>
    public ThresholdTernaryQuantizer(bool perRow = false, double stepSizeMultiplier = 1.0, double theta = DefaultTheta)
        : base(nameof(ThresholdTernaryQuantizer), perRow, stepSizeMultiplier)
    {
        if (!(theta > 0 && theta < 1))
            throw new ArgumentOutOfRangeException(nameof(theta), theta, "The TTQ threshold fraction theta must be in (0, 1); default 0.05.");
        Theta = theta;
    }

    /// <summary>Threshold as a fraction of max |w|.</summary>
    public double Theta { get; }

    /// <inheritdoc />
    protected override QuantizerKind Kind => QuantizerKind.ThresholdTernary;

    /// <inheritdoc />
    protected override Tensor Threshold(Tensor abs)
    {
        using var theta = Theta.ToScalar();
        return abs.amax(new long[] { 1 }, keepdim: true).mul(theta);
    }
}
