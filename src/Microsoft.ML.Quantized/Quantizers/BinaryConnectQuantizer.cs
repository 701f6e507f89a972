using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized;

/// <summary>
/// <see cref="QuantizerKind.BinaryConnect"/> (Courbariaux, Bengio and David 2015): <c>q(w) = sign(w)</c> with
/// sign(0) = +1 and no scale. The gradient reaches the float shadow weight through the straight-through estimator
/// clipped as in the paper: 1 where |w| &lt;= 1, 0 outside. Stored as <see cref="CodeLayout.Sign"/> with scale 1.
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
        return QuantizerMath.StraightThrough(q, input, w => w.clamp(Scalars.MinusOne, Scalars.One)).MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    public override QuantizedWeights Encode(Tensor weight)
    {
        using var scope = NewDisposeScope();
        var w = QuantizerMath.CheckEncodable(weight, RegistryName);
        return QuantizerMath.ToWeights(CodeLayout.Sign, 1, w, false, w >= Scalars.Zero, torch.ones(1, 1));
    }
}
