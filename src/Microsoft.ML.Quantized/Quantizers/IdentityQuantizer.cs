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

    public override QuantizedWeights Encode(Tensor weight)
    {
        using var cpu = weight.detach().cpu().to_type(ScalarType.Float32).contiguous();
        var rows = (int)cpu.shape[0];
        var columns = (int)(cpu.numel() / rows);
        return new QuantizedWeights(CodeLayout.Float, 32, rows, columns, false, Array.Empty<int>(), Array.Empty<float>(), cpu.data<float>().ToArray());
    }
}
