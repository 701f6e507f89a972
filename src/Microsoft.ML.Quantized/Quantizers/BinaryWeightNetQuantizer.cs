using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized;

/// <summary>
/// <see cref="QuantizerKind.BinaryWeightNet"/> (Rastegari et al. 2016, XNOR-Net's BWN): <c>q(w) = alpha * sign(w)</c>
/// with <c>alpha = mean |w|</c> over the tensor, over each row with per-row scales, or over each gate's block of rows with
/// per-gate scales (Hou et al. 2019), times the step-size
/// multiplier; sign(0) = +1. Straight-through gradient clipped to |w| &lt;= 1 as in XNOR-Net (alpha is treated as a
/// constant), and the shadow weight clipped to [-1, 1] after each optimizer step (<see cref="ConstrainShadowWeight"/>), as the
/// authors' training code does before every forward (<c>clampConvParms</c>), so the gradient mask never strands a weight.
/// Stored as <see cref="CodeLayout.Sign"/> with one scale per group.
/// </summary>
internal sealed class BinaryWeightNetQuantizer : Quantizer
{
    private readonly bool _perRow;
    private readonly double _multiplier;
    private readonly int _gates;

    /// <summary>Creates the quantizer.</summary>
    /// <param name="perRow">One alpha per row (output channel) instead of one per tensor.</param>
    /// <param name="stepSizeMultiplier">Multiplies alpha (1 = the paper's).</param>
    /// <param name="gates">One alpha per block of rows, the gates a recurrent matrix stacks (1 = per tensor or per row).</param>
    public BinaryWeightNetQuantizer(bool perRow = false, double stepSizeMultiplier = 1.0, int gates = 1) : base(nameof(BinaryWeightNetQuantizer))
    {
        _perRow = perRow;
        _multiplier = stepSizeMultiplier;
        _gates = gates;
    }

    /// <inheritdoc />
    public override string RegistryName => QuantizerRegistry.NameOf(new QuantizerOptions
    {
        Kind = QuantizerKind.BinaryWeightNet, PerRowScale = _perRow, PerGateScale = _gates > 1, StepSizeMultiplier = _multiplier,
    });

    /// <inheritdoc />
    public override int Bits => 1;

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var (sign, alpha) = Quantize(input.detach());
        var q = (sign * alpha).reshape(input.shape);
        return QuantizerMath.StraightThrough(q, input, w => w.clamp(Scalars.MinusOne, Scalars.One)).MoveToOuterDisposeScope();
    }

    /// <summary>Clips the shadow weight to [-1, 1] (XNOR-Net's training code).</summary>
    public override void ConstrainShadowWeight(Tensor weight) => QuantizerMath.ClipToUnitRange(weight);

    /// <inheritdoc />
    public override QuantizedWeights Encode(Tensor weight)
    {
        using var scope = NewDisposeScope();
        var w = QuantizerMath.CheckEncodable(weight, RegistryName);
        var (sign, alpha) = Quantize(w);
        return QuantizerMath.ToWeights(CodeLayout.Sign, 1, w, _perRow, sign > Scalars.Zero, alpha, _gates);
    }

    /// <summary>Grouped signs [groups, n] and alphas [groups, 1].</summary>
    private (Tensor Sign, Tensor Alpha) Quantize(Tensor w)
    {
        var g = QuantizerMath.Grouped(w, _perRow, _gates);
        var alpha = g.abs().mean(new long[] { 1 }, keepdim: true);
        alpha = QuantizerMath.TimesMultiplier(alpha, _multiplier);
        return (QuantizerMath.SignNonZero(g), alpha);
    }
}
