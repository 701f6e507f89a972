using System.Numerics;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized;

/// <summary>
/// What the hand-written sequence operations share (<see cref="LstmSequenceFunction"/>, <see cref="GruSequenceFunction"/>,
/// <see cref="InputTermsFunction"/>): one autograd operation with one output over a whole sequence, whose forward and
/// backward run typed (float32 or float64, chosen by the first input's type) and keep what the backward needs with
/// <c>save_for_backward</c>; everything they create lives in a dispose scope of their own, the results moved to the caller's.
/// </summary>
/// <typeparam name="TSelf">The operation.</typeparam>
/// <typeparam name="TSettings">What it needs besides tensors: the last argument of <c>apply</c>.</typeparam>
/// <remarks>
/// One output means autograd always passes the backward a defined gradient (zeros where part of the output went unused): for
/// an output that gets none, TorchSharp hands the backward a wrapper of no tensor that it never takes off the thread's
/// live-tensor count.
/// </remarks>
internal abstract class SequenceFunction<TSelf, TSettings> : autograd.MultiTensorFunction<TSelf>
    where TSelf : SequenceFunction<TSelf, TSettings>, new()
    where TSettings : class
{
    private const string SettingsKey = "settings";

    /// <inheritdoc/>
    public sealed override List<Tensor> forward(autograd.AutogradContext ctx, params object[] vars)
    {
        var settings = (TSettings)vars[^1];
        using var scope = NewDisposeScope();
        var (output, kept) = ((Tensor)vars[0]).dtype == ScalarType.Float64 ? Forward<double>(vars, settings) : Forward<float>(vars, settings);
        ctx.save_for_backward(kept);
        ctx.save_data(SettingsKey, settings);
        output.MoveToOuterDisposeScope();
        foreach (var tensor in kept) tensor?.MoveToOuterDisposeScope();
        return new List<Tensor> { output };
    }

    /// <inheritdoc/>
    public sealed override List<Tensor> backward(autograd.AutogradContext ctx, List<Tensor> gradOutputs)
    {
        var settings = (TSettings)ctx.get_data(SettingsKey);
        using var scope = NewDisposeScope();
        var saved = ctx.get_saved_variables();
        var gradient = gradOutputs[0];
        var gradients = gradient.dtype == ScalarType.Float64 ? Backward<double>(gradient, saved, settings) : Backward<float>(gradient, saved, settings);
        foreach (var result in gradients) result?.MoveToOuterDisposeScope();
        return gradients;
    }

    /// <summary>
    /// The forward pass on <c>apply</c>'s arguments: the output and the tensors the backward pass needs, in the order it reads
    /// them (null where a tensor does not apply).
    /// </summary>
    protected abstract (Tensor Output, List<Tensor> Kept) Forward<T>(object[] vars, TSettings settings)
        where T : unmanaged, IFloatingPointIeee754<T>;

    /// <summary>
    /// The backward pass from the output's gradient and the kept tensors: one gradient per <c>apply</c> argument (null for
    /// the settings and for arguments that were null).
    /// </summary>
    protected abstract List<Tensor> Backward<T>(Tensor outputGradient, List<Tensor> saved, TSettings settings)
        where T : unmanaged, IFloatingPointIeee754<T>;
}
