using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized;

/// <summary>
/// <see cref="QuantizerKind.TernaryWeightNet"/> (Li, Zhang and Liu 2016): threshold <c>delta = 0.7 * mean |w|</c>,
/// <c>q(w) = alpha * sign(w) * 1{|w| &gt; delta}</c> with <c>alpha</c> the mean of the kept |w| (the paper's
/// approximate least-squares solution), per tensor or per row, times the step-size multiplier. The
/// straight-through gradient is the identity (the paper does not clip). Stored as
/// <see cref="CodeLayout.SignedInteger"/> with 2 bits (codes -1, 0, +1) and one scale per group.
/// </summary>
internal sealed class TernaryWeightNetQuantizer : Quantizer
{
    /// <summary>The paper's threshold factor: delta = 0.7 * mean |w|.</summary>
    public const double ThresholdFactor = 0.7;

    private readonly bool _perRow;
    private readonly double _multiplier;

    /// <summary>Creates the quantizer.</summary>
    /// <param name="perRow">One threshold and alpha per row (output channel) instead of one per tensor.</param>
    /// <param name="stepSizeMultiplier">Multiplies alpha (1 = the paper's); the threshold is unchanged.</param>
    public TernaryWeightNetQuantizer(bool perRow = false, double stepSizeMultiplier = 1.0) : base(nameof(TernaryWeightNetQuantizer))
    {
        _perRow = perRow;
        _multiplier = stepSizeMultiplier;
    }

    /// <inheritdoc />
    public override string RegistryName => QuantizerRegistry.NameOf(new QuantizerOptions
    {
        Kind = QuantizerKind.TernaryWeightNet, PerRowScale = _perRow, StepSizeMultiplier = _multiplier,
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
        var delta = g.abs().mean(new long[] { 1 }, keepdim: true) * ThresholdFactor;
        return Ternarize(g, delta, _multiplier);
    }

    /// <summary>
    /// Ternary codes of grouped weights <paramref name="g"/> [groups, n] for thresholds <paramref name="delta"/>
    /// [groups, 1]: code = sign(w) where |w| &gt; delta, else 0; alpha [groups, 1] = mean of the kept |w| (0 when
    /// none is kept) times <paramref name="multiplier"/>.
    /// </summary>
    internal static (Tensor Codes, Tensor Alpha) Ternarize(Tensor g, Tensor delta, double multiplier)
    {
        var abs = g.abs();
        var kept = (abs > delta).to_type(g.dtype);
        var count = kept.sum(new long[] { 1 }, keepdim: true).clamp_min(1.0);
        var alpha = (abs * kept).sum(new long[] { 1 }, keepdim: true) / count;
        if (multiplier != 1.0) alpha = alpha * multiplier;
        return (g.sign() * kept, alpha);
    }
}
