using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized;

/// <summary>
/// <see cref="QuantizerKind.ThresholdTernary"/>: the threshold ternary quantization (TTQ) that HitNet (Wang et al.,
/// NeurIPS 2018) applies to weights, <c>q(w) = alpha * sign(w) * 1{|w| &gt; delta}</c>.
/// Threshold: <c>delta = theta * max |w|</c> with <c>theta = 0.05</c> by default, the rule and value of Zhu et al.,
/// "Trained Ternary Quantization" (ICLR 2017, t = 0.05). Scale: <c>alpha</c> = mean of the kept |w| (the
/// least-squares scale for the chosen support, as in TWN) instead of TTQ's trained positive/negative scales, so the
/// code is symmetric and packs in 2 bits. Per tensor or per row; alpha times the step-size multiplier.
/// Identity straight-through gradient. Stored as <see cref="CodeLayout.SignedInteger"/> with 2 bits and one scale per group.
/// Caveat: HitNet's own section on TTQ could not be consulted when this was written, so its exact threshold and
/// scale are not confirmed here; theta is a constructor argument so the rule can be matched without changing callers.
/// </summary>
internal sealed class ThresholdTernaryQuantizer : Quantizer
{
    /// <summary>Default theta: delta = 0.05 * max |w| (Zhu et al. 2017, t = 0.05).</summary>
    public const double DefaultTheta = 0.05;

    private readonly bool _perRow;
    private readonly double _multiplier;

    /// <summary>Creates the quantizer.</summary>
    /// <param name="perRow">One threshold and alpha per row (output channel) instead of one per tensor.</param>
    /// <param name="stepSizeMultiplier">Multiplies alpha (1 = unchanged); the threshold is unchanged.</param>
    /// <param name="theta">Threshold as a fraction of max |w|, in (0, 1).</param>
    public ThresholdTernaryQuantizer(bool perRow = false, double stepSizeMultiplier = 1.0, double theta = DefaultTheta)
        : base(nameof(ThresholdTernaryQuantizer))
    {
        if (!(theta > 0 && theta < 1))
            throw new ArgumentOutOfRangeException(nameof(theta), theta, "The TTQ threshold fraction theta must be in (0, 1); default 0.05.");
        _perRow = perRow;
        _multiplier = stepSizeMultiplier;
        Theta = theta;
    }

    /// <summary>Threshold as a fraction of max |w|.</summary>
    public double Theta { get; }

    /// <inheritdoc />
    public override string RegistryName => QuantizerRegistry.NameOf(new QuantizerOptions
    {
        Kind = QuantizerKind.ThresholdTernary, PerRowScale = _perRow, StepSizeMultiplier = _multiplier,
    });

    /// <inheritdoc />
    public override int Bits => 2;

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var (codes, alpha) = Quantize(input.detach());
        var q = (codes * alpha).reshape(input.shape);
        return QuantizerMath.StraightThrough(q, input).MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    public override QuantizedWeights Encode(Tensor weight)
    {
        using var scope = NewDisposeScope();
        var w = QuantizerMath.CheckEncodable(weight, RegistryName);
        var (codes, alpha) = Quantize(w);
        return QuantizerMath.ToWeights(CodeLayout.SignedInteger, 2, w, _perRow, codes, alpha);
    }

    private (Tensor Codes, Tensor Alpha) Quantize(Tensor w)
    {
        var g = QuantizerMath.Grouped(w, _perRow);
        var delta = g.abs().amax(new long[] { 1 }, keepdim: true) * Theta;
        return TernaryWeightNetQuantizer.Ternarize(g, delta, _multiplier);
    }
}
