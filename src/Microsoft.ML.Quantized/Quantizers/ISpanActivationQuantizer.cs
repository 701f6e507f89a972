using System.Numerics;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized;

/// <summary>
/// The span form of an activation quantizer (<see cref="Quantizer.SpanForm"/>): it quantizes a contiguous block of a step's
/// activations on the tensors' memory, computing any statistic it needs (a step from max |x|) itself, so the sequence
/// functions (<see cref="LstmSequenceFunction"/>, <see cref="GruSequenceFunction"/>) need not record a graph. A learned step
/// (LSQ) enters the function as an input (<see cref="StepInput"/>), and the function sums its gradient from the step factors
/// the quantizer writes. A cell whose activation quantizers are all identities or have a span form runs its sequence
/// function; any other activation quantizer keeps the autograd loop.
/// </summary>
internal interface ISpanActivationQuantizer
{
    /// <summary>
    /// Quantizes <paramref name="values"/>, a contiguous [<paramref name="rows"/>, <paramref name="width"/>] block, in place
    /// to what <c>forward</c> returns for a tensor of that shape holding them (the same random draws from
    /// <see cref="TrainingRandom"/>, in training or evaluation as the module is set), and writes the straight-through
    /// gradient factor of each value, d surrogate / d x (1 inside the clip range, 0 outside), to
    /// <paramref name="gradientFactors"/>.
    /// </summary>
    void Quantize<T>(Span<T> values, Span<T> gradientFactors, int rows, int width, ScalarType dtype, Device device)
        where T : unmanaged, IFloatingPointIeee754<T>;

    /// <summary>
    /// As the other overload with the learned step's value <paramref name="step"/> (the sequence function's input from
    /// <see cref="StepInput"/>, read once per sequence), also writing the derivative of each quantized value with respect to
    /// it, d q / d s, to <paramref name="stepFactors"/> unless that is empty (by default the step is ignored and the factors
    /// are 0: a quantizer without a learned step).
    /// </summary>
    void Quantize<T>(Span<T> values, Span<T> gradientFactors, Span<T> stepFactors, T step, int rows, int width, ScalarType dtype, Device device)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        Quantize(values, gradientFactors, rows, width, dtype, device);
        stepFactors.Clear();
    }

    /// <summary>
    /// The learned step as <c>forward</c> uses it on a tensor of <paramref name="count"/> values, one value [1] whose
    /// gradient reaches the step parameter as <c>forward</c>'s does (LSQ's gradient scale, the multiplier); null (the default)
    /// for a quantizer without a learned step.
    /// </summary>
    Tensor? StepInput(long count) => null;
}
