using System.Numerics;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized;

/// <summary>
/// The span form of an activation quantizer (<see cref="Quantizer.SpanForm"/>): with no learned state, it quantizes a
/// contiguous block of a step's activations on the tensors' memory, computing any statistic it needs (a step from max |x|)
/// itself, so the sequence functions (<see cref="LstmSequenceFunction"/>, <see cref="GruSequenceFunction"/>) need not record
/// a graph. A cell whose activation quantizers are all identities or have a span form runs its sequence function; any other
/// activation quantizer keeps the autograd loop.
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
}
