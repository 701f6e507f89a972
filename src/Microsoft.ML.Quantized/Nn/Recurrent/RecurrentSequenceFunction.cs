using System.Numerics;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized;

/// <summary>
/// What the sequence functions (<see cref="LstmSequenceFunction"/>, <see cref="GruSequenceFunction"/>) share: one autograd
/// operation with one output over a whole sequence, whose forward and backward run typed (float32 or float64, chosen by the
/// input's type) and keep what the backward needs with <c>save_for_backward</c>; everything they create lives in a dispose
/// scope of their own, the results moved to the caller's.
/// </summary>
/// <remarks>
/// One output means autograd always passes the backward a defined gradient (zeros where part of the output went unused): for
/// an output that gets none, TorchSharp hands the backward a wrapper of no tensor that it never takes off the thread's
/// live-tensor count. The last argument of <c>apply</c> is the <see cref="RecurrentSequenceSettings"/>.
/// </remarks>
internal abstract class RecurrentSequenceFunction<TSelf> : autograd.MultiTensorFunction<TSelf>
    where TSelf : RecurrentSequenceFunction<TSelf>, new()
{
    private const string SettingsKey = "settings";

    /// <inheritdoc/>
    public sealed override List<Tensor> forward(autograd.AutogradContext ctx, params object[] vars)
    {
        var settings = (RecurrentSequenceSettings)vars[^1];
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
        var settings = (RecurrentSequenceSettings)ctx.get_data(SettingsKey);
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
    protected abstract (Tensor Output, List<Tensor> Kept) Forward<T>(object[] vars, RecurrentSequenceSettings settings)
        where T : unmanaged, IFloatingPointIeee754<T>;

    /// <summary>
    /// The backward pass from the output's gradient and the kept tensors: one gradient per <c>apply</c> argument (null for
    /// the settings and for arguments that were null).
    /// </summary>
    protected abstract List<Tensor> Backward<T>(Tensor outputGradient, List<Tensor> saved, RecurrentSequenceSettings settings)
        where T : unmanaged, IFloatingPointIeee754<T>;

    /// <summary>
    /// Gate block <paramref name="block"/> of every row of <paramref name="activations"/> [rows, blocks * hidden] through
    /// <paramref name="quantizer"/> into the same places of <paramref name="quantized"/>, its straight-through factors into
    /// <paramref name="factors"/> and, unless <paramref name="stepFactors"/> is empty, the factors of its learned step
    /// <paramref name="step"/> there (a copy, ones and zeros where <paramref name="quantizer"/> is null, the identity). The block is gathered into
    /// <paramref name="scratch"/> (3 * rows * hidden values) so the quantizer sees the [rows, hidden] tensor the autograd loop
    /// hands it.
    /// </summary>
    protected static void QuantizeGate<T>(ISpanActivationQuantizer? quantizer, ReadOnlySpan<T> activations, Span<T> quantized, Span<T> factors,
        Span<T> stepFactors, T step, int rows, int hidden, int blocks, int block, Span<T> scratch, ScalarType dtype, Device device)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int width = blocks * hidden, size = rows * hidden;
        bool learnsSteps = !stepFactors.IsEmpty;
        if (quantizer is null)
        {
            for (int r = 0; r < rows; r++)
            {
                activations.Slice(r * width + block * hidden, hidden).CopyTo(quantized.Slice(r * width + block * hidden, hidden));
                factors.Slice(r * width + block * hidden, hidden).Fill(T.One);
                if (learnsSteps) stepFactors.Slice(r * width + block * hidden, hidden).Clear();
            }
            return;
        }
        var values = scratch[..size];
        var valueFactors = scratch.Slice(size, size);
        var valueStepFactors = learnsSteps ? scratch.Slice(2 * size, size) : default;
        for (int r = 0; r < rows; r++) activations.Slice(r * width + block * hidden, hidden).CopyTo(values.Slice(r * hidden, hidden));
        quantizer.Quantize(values, valueFactors, valueStepFactors, step, rows, hidden, dtype, device);
        for (int r = 0; r < rows; r++)
        {
            values.Slice(r * hidden, hidden).CopyTo(quantized.Slice(r * width + block * hidden, hidden));
            valueFactors.Slice(r * hidden, hidden).CopyTo(factors.Slice(r * width + block * hidden, hidden));
            if (learnsSteps) valueStepFactors.Slice(r * hidden, hidden).CopyTo(stepFactors.Slice(r * width + block * hidden, hidden));
        }
    }

    /// <summary>
    /// The learned steps' values, the function's input <paramref name="steps"/> read once for the whole sequence (0 where an
    /// activation learns none); zeros for <paramref name="activations"/> activations without learned steps.
    /// </summary>
    protected static T[] StepValues<T>(Tensor? steps, int activations) where T : unmanaged, IFloatingPointIeee754<T>
        => steps is null ? new T[activations] : steps.data<float>().Select(T.CreateChecked).ToArray();

    /// <summary>
    /// The learned steps' gradient as a tensor like <paramref name="steps"/> (the function's input, float32 [activations]),
    /// from the sums <paramref name="sums"/>; null without learned steps.
    /// </summary>
    protected static Tensor? StepGradient<T>(Tensor? steps, T[] sums) where T : unmanaged, IFloatingPointIeee754<T>
        => steps is null ? null : torch.tensor(sums.Select(double.CreateChecked).ToArray()).to(steps.dtype);

    /// <summary>Step <paramref name="t"/>'s part of a per-step buffer, or the empty span for a buffer that is not there.</summary>
    protected static ReadOnlySpan<T> StepOf<T>(ReadOnlySpan<T> buffer, int t, int size) => buffer.IsEmpty ? default : buffer.Slice(t * size, size);

    /// <summary>Step <paramref name="t"/>'s part of a per-step buffer to write, or the empty span for a buffer that is not there.</summary>
    protected static Span<T> StepOf<T>(Span<T> buffer, int t, int size) => buffer.IsEmpty ? default : buffer.Slice(t * size, size);
}
