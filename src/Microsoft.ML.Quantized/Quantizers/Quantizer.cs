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

    /// <summary>
    /// This quantizer's span form for the sequence functions (<see cref="ISpanActivationQuantizer"/>), or null (the default)
    /// where its value or gradient is not element-wise with a statistic the span form computes itself: a cell with such an
    /// activation quantizer runs the autograd loop.
    /// </summary>
    public virtual ISpanActivationQuantizer? SpanForm => null;

    /// <summary>Integer codes and scales that decode to <c>forward(weight)</c> in evaluation mode (2-D weights).</summary>
    public abstract QuantizedWeights Encode(Tensor weight);

    /// <summary>
    /// Applies the method's constraint on the float shadow weights in place, after each optimizer step (training with
    /// shadow weights only). The default does nothing; the binary methods clip to [-1, 1] as their papers do.
    /// </summary>
    public virtual void ConstrainShadowWeight(Tensor weight) { }

    // The last input of Reused and its result, both detached and owned by this module.
    private Tensor? _reusedInput;
    private Tensor? _reusedResult;

    /// <summary>
    /// <paramref name="compute"/> of <paramref name="input"/> (detached), reused while the input stays bit-identical (values,
    /// shape, dtype, device; checked with one comparison): for expensive searches whose result depends only on the input's
    /// values, such as a least-squares fit of the weights, which in evaluation are the same at every forward. The result is
    /// detached and belongs to the current dispose scope. Like the rest of a torch module, not for concurrent calls (the
    /// ML.NET transformers take a lock around the model).
    /// </summary>
    protected Tensor Reused(Tensor input, Func<Tensor, Tensor> compute)
    {
        var values = input.detach();
        var last = _reusedInput;
        bool same = last is not null && last.device_type == values.device_type && last.device_index == values.device_index
                    && last.dtype == values.dtype && last.shape.SequenceEqual(values.shape) && last.allclose(values, 0, 0);
        if (!same)
        {
            Tensor result;
            using (var scope = NewDisposeScope())
            using (no_grad())
                result = compute(values).detach().DetachFromDisposeScope();
            _reusedInput?.Dispose();
            _reusedResult?.Dispose();
            _reusedInput = values.clone().DetachFromDisposeScope();
            _reusedResult = result;
        }
        return _reusedResult!.alias();
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _reusedInput?.Dispose();
            _reusedResult?.Dispose();
            _reusedInput = _reusedResult = null;
        }
        base.Dispose(disposing);
    }
}
