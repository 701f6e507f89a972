using static TorchSharp.torch;

namespace Microsoft.ML.Quantized;

/// <summary><see cref="QuantizerKind.None"/>: float values pass through unchanged.</summary>
internal sealed class IdentityQuantizer : Quantizer
{
    public IdentityQuantizer() : base(nameof(IdentityQuantizer)) { }

    public override string RegistryName => "none";

    public override int Bits => 32;

    public override bool IsIdentity => true;

    public override Tensor forward(Tensor input) => input.alias();

    public override QuantizedWeights Encode(Tensor weight) => QuantizerMath.FloatWeights(weight);
}
