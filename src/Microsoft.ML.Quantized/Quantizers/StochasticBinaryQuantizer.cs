using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized;

/// <summary>
/// <see cref="QuantizerKind.StochasticBinary"/>, BinaryConnect's stochastic binarization (Courbariaux et al. 2015):
/// in training <c>q(w) = +1</c> with probability <c>hard_sigmoid(w) = clamp((w + 1) / 2, 0, 1)</c>, else -1, so
/// E[q(w)] = w on [-1, 1]; in evaluation the deterministic sign (sign(0) = +1). Training as in the paper's Algorithm 1:
/// identity straight-through gradient to the shadow weight, which is clipped to [-1, 1] after each optimizer step
/// (<see cref="ConstrainShadowWeight"/>). No scale; stored as <see cref="CodeLayout.Sign"/> with scale 1 (the evaluation rule).
/// Random draws use the training run's own generator (<see cref="TrainingRandom"/>), so the run's seed makes them repeatable.
/// </summary>
internal sealed class StochasticBinaryQuantizer : Quantizer
{
    /// <summary>Creates the quantizer (no scale, one bit).</summary>
    public StochasticBinaryQuantizer() : base(nameof(StochasticBinaryQuantizer)) { }

    /// <inheritdoc />
    public override string RegistryName => "sbc";

    /// <inheritdoc />
    public override int Bits => 1;

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
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
        return QuantizerMath.ToWeights(CodeLayout.Sign, 1, w, false, w >= Scalars.Zero, torch.ones(1, 1));
    }
}
