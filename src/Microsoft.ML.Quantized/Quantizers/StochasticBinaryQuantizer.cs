using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized;

/// <summary>
/// <see cref="QuantizerKind.StochasticBinary"/>, BinaryConnect's stochastic binarization (Courbariaux et al. 2015):
/// in training <c>q(w) = +1</c> with probability <c>hard_sigmoid(w) = clamp((w + 1) / 2, 0, 1)</c>, else -1, so
/// E[q(w)] = w on [-1, 1]. In evaluation the deterministic sign (sign(0) = +1), stored as <see cref="CodeLayout.Sign"/>
/// with scale 1; or with <see cref="QuantizerOptions.RealValuedEvaluation"/> the real-valued weight itself, as the paper
/// evaluates this variant (Section 2.6), stored as <see cref="CodeLayout.Float"/> (32 bits). Training as in the paper's
/// Algorithm 1: identity straight-through gradient to the shadow weight, which is clipped to [-1, 1] after each optimizer
/// step (<see cref="ConstrainShadowWeight"/>). No scale.
/// Random draws use the training run's own generator (<see cref="TrainingRandom"/>), so the run's seed makes them repeatable.
/// </summary>
internal sealed class StochasticBinaryQuantizer : Quantizer
{
    private readonly bool _realValuedEvaluation;

    /// <summary>Creates the quantizer (no scale, one bit in training).</summary>
    /// <param name="realValuedEvaluation">Evaluate and encode the real-valued weights instead of their signs.</param>
    public StochasticBinaryQuantizer(bool realValuedEvaluation = false) : base(nameof(StochasticBinaryQuantizer))
        => _realValuedEvaluation = realValuedEvaluation;

    /// <inheritdoc />
    public override string RegistryName => _realValuedEvaluation ? "sbc-real" : "sbc";

    /// <summary>Bits per stored weight: 1, or 32 when the real-valued weights are evaluated and stored.</summary>
    public override int Bits => _realValuedEvaluation ? 32 : 1;

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        if (!training && _realValuedEvaluation) return input.alias();
        using var scope = NewDisposeScope();
        var w = input.detach();
        Tensor q;
        if (training)
        {
            var p = w.add(Scalars.One, Scalars.One).mul(Scalars.Half).clamp(Scalars.Zero, Scalars.One);
            q = (TrainingRandom.RandLike(w) < p).to_type(w.dtype).mul(Scalars.Two).sub(Scalars.One);
        }
        else
        {
            q = QuantizerMath.SignNonZero(w);
        }
        return QuantizerMath.StraightThrough(q, input).MoveToOuterDisposeScope();
    }

    /// <summary>Clips the shadow weight to [-1, 1] (BinaryConnect, Algorithm 1).</summary>
    public override void ConstrainShadowWeight(Tensor weight) => QuantizerMath.ClipToUnitRange(weight);

    /// <inheritdoc />
    public override QuantizedWeights Encode(Tensor weight)
    {
        using var scope = NewDisposeScope();
        var w = QuantizerMath.CheckEncodable(weight, RegistryName);
        if (_realValuedEvaluation) return QuantizerMath.FloatWeights(w);
        return QuantizerMath.ToWeights(CodeLayout.Sign, 1, w, false, w >= Scalars.Zero, torch.ones(1, 1));
    }
}
