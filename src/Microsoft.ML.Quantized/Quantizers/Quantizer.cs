using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized;

/// <summary>
/// A quantizer: pure math on one tensor. <c>forward(x)</c> returns the fake-quantized tensor (same shape,
/// float values on the quantization grid). In training mode the gradient flows to <c>x</c> through a
/// straight-through estimator (clipped to the quantizer's range where the papers clip). Each quantized
/// tensor gets its own instance (a module), so learned state such as a learned step size trains and saves
/// with the model. Created by <see cref="QuantizerRegistry"/>; layers do not know which one they got.
/// </summary>
internal abstract class Quantizer : nn.Module<Tensor, Tensor>
{
    protected Quantizer(string name) : base(name) { }

    /// <summary>Registry name, e.g. <c>twn</c> or <c>uniform4</c>.</summary>
    public abstract string RegistryName { get; }

    /// <summary>Bits stored per value.</summary>
    public abstract int Bits { get; }

    /// <summary>True for <see cref="QuantizerKind.None"/>: forward is the identity (an alias).</summary>
    public virtual bool IsIdentity => false;

    /// <summary>Integer codes and scales that decode to <c>forward(weight)</c> in evaluation mode (2-D weights).</summary>
    public abstract QuantizedWeights Encode(Tensor weight);
}
