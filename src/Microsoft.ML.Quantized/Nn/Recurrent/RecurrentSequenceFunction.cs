using System.Numerics;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized;

/// <summary>
/// What the recurrent sequence functions (<see cref="LstmSequenceFunction"/>, <see cref="GruSequenceFunction"/>) share besides
/// the autograd plumbing of <see cref="SequenceFunction{TSelf, TSettings}"/>: the span forms of the activation quantizers per
/// gate block and their learned steps.
/// </summary>
internal abstract class RecurrentSequenceFunction<TSelf> : SequenceFunction<TSelf, RecurrentSequenceSettings>
    where TSelf : RecurrentSequenceFunction<TSelf>, new()
{
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

    /// <summary>
    /// Into how many parts a step's row-by-row work is split (<see cref="IntraOpThreads"/>): libtorch's intra-op thread count,
    /// at most one part per row, for steps of at least 16,384 values (the quickstart's LSTM step has 32,768); below that one
    /// (a parallel region costs a few microseconds).
    /// </summary>
    protected static int RowParts(int rows, int features) => (long)rows * features < (1 << 14) ? 1 : Math.Max(1, Math.Min(torch.get_num_threads(), rows));

    /// <summary>
    /// Runs <paramref name="body"/>(part, first row, row count) for each of <paramref name="parts"/> contiguous row ranges of
    /// <paramref name="rows"/> rows, on libtorch's intra-op threads (<see cref="IntraOpThreads"/>).
    /// </summary>
    protected static void ForEachRowPart(int rows, int parts, Action<int, int, int> body) =>
        IntraOpThreads.For(parts, parts, part =>
        {
            int first = rows * part / parts;
            body(part, first, rows * (part + 1) / parts - first);
        });

    /// <summary>
    /// Rows <paramref name="first"/> .. + <paramref name="count"/> of step <paramref name="step"/>'s recurrent term added to
    /// <paramref name="addend"/> into <paramref name="target"/> (those rows, [count, features]): without a normalization
    /// <paramref name="target"/> holds the product and becomes <c>addend + product</c>; with one, <c>addend + gain *
    /// standardized product</c> from the standardizer's step (standardized here under layer norm, before for batch norm).
    /// <paramref name="addend"/> is [count, features] with <paramref name="addendStride"/> = features, or one row for every
    /// row with <paramref name="addendStride"/> = 0.
    /// </summary>
    protected static void AddRecurrentTerm<T>(Span<T> target, ReadOnlySpan<T> addend, int addendStride, int step, int first, int count, Tensor? gains,
        SequenceStandardizer<T>? standardizer) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int features = target.Length / count;
        if (standardizer is null)
        {
            for (int r = 0; r < count; r++)
                TensorPrimitives.Add(target.Slice(r * features, features), addend.Slice(r * addendStride, features), target.Slice(r * features, features));
            return;
        }
        var standardized = standardizer.IsRowWise ? standardizer.Forward(step, first, count) : standardizer.Step(step).Slice(first * features, count * features);
        var g = TensorSpans.Of<T>(gains!);
        for (int r = 0; r < count; r++)
            TensorPrimitives.MultiplyAdd(standardized.Slice(r * features, features), g, addend.Slice(r * addendStride, features), target.Slice(r * features, features));
    }

    /// <summary>
    /// The recurrent normalization's part of a step's derivative for rows <paramref name="first"/> .. + <paramref name="count"/>:
    /// from the gradient of the normalized term <paramref name="termGradient"/> (those rows) writes the standardized product's,
    /// the gain times it, to <paramref name="productGradient"/>, adds the gain's gradient to <paramref name="gainSums"/>, and under
    /// layer norm takes <paramref name="productGradient"/> through the standardization (batch norm's spans the rows and
    /// follows on one thread). <paramref name="scratch"/> holds 2 * features values.
    /// </summary>
    protected static void NormalizationBackwardRows<T>(ReadOnlySpan<T> termGradient, Span<T> productGradient, int step, int first, int count, Tensor gains,
        SequenceStandardizer<T> standardizer, Span<T> gainSums, Span<T> scratch) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int features = gainSums.Length;
        var standardized = standardizer.Step(step).Slice(first * features, count * features);
        var g = TensorSpans.Of<T>(gains);
        for (int r = 0; r < count; r++)
        {
            var dt = termGradient.Slice(r * features, features);
            TensorPrimitives.Multiply(dt, g, productGradient.Slice(r * features, features));
            TensorPrimitives.MultiplyAdd(dt, standardized.Slice(r * features, features), gainSums, gainSums);
        }
        if (standardizer.IsRowWise) standardizer.Backward(productGradient, step, first, count, scratch);
    }

    /// <summary>Values <paramref name="at"/> .. + <paramref name="size"/> of a saved buffer, or the empty span where it is not there.</summary>
    protected static Span<T> Rows<T>(Tensor? buffer, int at, int size) where T : unmanaged => buffer is null ? default : TensorSpans.Of<T>(buffer).Slice(at, size);

    /// <summary>Step <paramref name="t"/>'s part of a per-step buffer, or the empty span for a buffer that is not there.</summary>
    protected static ReadOnlySpan<T> StepOf<T>(ReadOnlySpan<T> buffer, int t, int size) => buffer.IsEmpty ? default : buffer.Slice(t * size, size);

    /// <summary>Step <paramref name="t"/>'s part of a per-step buffer to write, or the empty span for a buffer that is not there.</summary>
    protected static Span<T> StepOf<T>(Span<T> buffer, int t, int size) => buffer.IsEmpty ? default : buffer.Slice(t * size, size);
}
