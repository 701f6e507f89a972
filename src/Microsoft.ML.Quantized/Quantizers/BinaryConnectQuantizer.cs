using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized;

/// <summary>
/// <see cref="QuantizerKind.BinaryConnect"/> (Courbariaux, Bengio and David 2015): <c>q(w) = sign(w)</c> with
/// sign(0) = +1 and no scale. Training follows the paper's Algorithm 1: the gradient with respect to the binary weight
/// reaches the float shadow weight unchanged (the identity straight-through estimator, as in the authors' code, which
/// takes <c>theano.grad(loss, wrt=Wb)</c>), and after each optimizer step the shadow weight is clipped to [-1, 1]
/// (<c>w_t = clip(w_{t-1} - eta * dC/dw_b)</c>; <see cref="ConstrainShadowWeight"/>), so no weight drifts out of
/// reach of a sign change. Stored as <see cref="CodeLayout.Sign"/> with scale 1.
/// </summary>
internal sealed class BinaryConnectQuantizer : Quantizer
{
    /// <summary>Creates the quantizer (it has no options: no scale, one bit).</summary>
    public BinaryConnectQuantizer() : base(nameof(BinaryConnectQuantizer)) { }

    /// <inheritdoc />
    public override string RegistryName => "bc";

    /// <inheritdoc />
    public override int Bits => 1;

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var q = QuantizerMath.SignNonZero(input.detach());
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
