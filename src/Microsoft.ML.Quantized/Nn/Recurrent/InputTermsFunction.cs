using System.Numerics;
using TorchSharp;
using static TorchSharp.torch;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace Microsoft.ML.Quantized;

/// <summary>
/// A cell's input term for every step at once, <c>Y = bias + gain * norm(X W_ih^T)</c> (<c>Y = X W_ih^T + bias</c> without a
/// normalization) for <c>X</c> [T, B, inputs], as one autograd operation with a hand-written backward pass: the products on
/// <see cref="StepProduct{T}"/> (forward, and <c>dX = dP W_ih</c>) and <see cref="SequenceWeightGradient"/>
/// (<c>dW_ih = dP^T X</c>); per-group layer normalization or recurrent batch normalization (<see cref="SequenceNormalization"/>,
/// the same <see cref="SequenceStandardizer{T}"/> as the recurrent term's) and the affine as vectorized managed code over the
/// steps, cut into parts that libtorch's intra-op thread count of threads take in turn.
/// </summary>
/// <remarks>
/// The cells run it where they run their sequence function (<see cref="QuantizedRecurrentCell.RunsSequenceFunction"/>); the
/// autograd loop keeps libtorch's operations, and the tests compare the two. What it replaces: libtorch's <c>matmul</c> (its
/// BLAS re-packs the weight on every call and splits the small-depth products poorly), <c>layer_norm</c> over the [T, B, G, H]
/// view (or batch norm's statistics as products and broadcasts), <c>addcmul</c> with the gain and the bias added twice: a
/// dozen passes over the [T, B, G*H] terms each way, most of them on one thread.
/// </remarks>
internal sealed class InputTermsFunction : SequenceFunction<InputTermsFunction, SequenceNormalization>
{
    // The element-wise passes are cut into parts of about this many values (at least a step each): a few per thread on the
    // quickstart's shape, and a short sequence in one part (a second thread costs more than it saves).
    private const int PartValues = 1 << 17;

    /// <inheritdoc/>
    public override string Name => "QuantizedInputTerms";

    /// <summary>
    /// <c>bias + gain * norm(input W^T)</c> for <paramref name="input"/> [T, B, inputs], <paramref name="weight"/> [features,
    /// inputs] and <paramref name="gain"/>, <paramref name="bias"/> [features]; without a normalization in
    /// <paramref name="normalization"/> <c>input W^T + bias</c> (<paramref name="gain"/> ignored). In training with batch
    /// statistics it updates the running statistics as <see cref="RecurrentBatchNorm.ForwardSteps"/> does.
    /// </summary>
    public static Tensor Run(Tensor input, Tensor weight, Tensor? gain, Tensor bias, SequenceNormalization normalization)
        => apply(input, weight, normalization.Normalized ? gain! : null!, bias, normalization)[0];

    /// <inheritdoc/>
    protected override (Tensor Output, List<Tensor> Kept) Forward<T>(object[] vars, SequenceNormalization normalization)
    {
        var (input, weight, gain, bias) = (((Tensor)vars[0]).contiguous(), (Tensor)vars[1], (vars[2] as Tensor)?.contiguous(), ((Tensor)vars[3]).contiguous());
        int steps = (int)input.shape[0], rows = (int)input.shape[1], inputs = (int)input.shape[2], features = (int)weight.shape[0], size = rows * features;
        var output = empty(steps, rows, features, dtype: input.dtype, device: input.device);
        var product = new StepProduct<T>(weight.t());
        var flat = input.view(1, steps * rows, inputs);
        if (!normalization.Normalized)
        {
            product.Multiply(flat, 0, TensorSpans.Of<T>(output));
            ForEachPart(steps, size, (_, first, last) =>
            {
                var y = TensorSpans.Of<T>(output);
                var b = TensorSpans.Of<T>(bias);
                for (int r = first * rows; r < last * rows; r++) TensorPrimitives.Add(y.Slice(r * features, features), b, y.Slice(r * features, features));
            });
            return (output, new List<Tensor> { input, weight, null!, null!, null! });
        }
        var standardizer = new SequenceStandardizer<T>(normalization, steps, rows, features, input.dtype, input.device);
        product.Multiply(flat, 0, TensorSpans.Of<T>(standardizer.Standardized));
        ForEachPart(steps, size, (_, first, last) =>
        {
            var y = TensorSpans.Of<T>(output);
            var g = TensorSpans.Of<T>(gain!);
            var b = TensorSpans.Of<T>(bias);
            for (int t = first; t < last; t++)
            {
                var standardized = standardizer.Forward(t);
                for (int r = 0; r < rows; r++)
                    TensorPrimitives.MultiplyAdd(standardized.Slice(r * features, features), g, b, y.Slice(t * size + r * features, features));
            }
        });
        standardizer.UpdateRunningStatistics();
        return (output, new List<Tensor> { input, weight, gain!, standardizer.Standardized, standardizer.InverseDeviations });
    }

    /// <inheritdoc/>
    protected override List<Tensor> Backward<T>(Tensor outputGradient, List<Tensor> saved, SequenceNormalization normalization)
    {
        var (input, weight, gain, standardized) = (saved[0], saved[1], saved[2], saved[3]);
        var gradient = outputGradient.contiguous();
        int steps = (int)gradient.shape[0], rows = (int)gradient.shape[1], features = (int)gradient.shape[2], size = rows * features;
        var standardizer = standardized is null ? null : new SequenceStandardizer<T>(normalization, standardized, saved[4]);
        var productGradient = standardizer is null ? gradient : empty_like(gradient);
        // Each part sums its own gain and bias gradients (d L / d Y times the standardized terms, d L / d Y); the parts' sums
        // are added in order afterwards.
        var partSums = new T[Parts(steps, size)][];
        ForEachPart(steps, size, (part, first, last) =>
        {
            var sums = partSums[part] = new T[2 * features];
            var scratch = new T[2 * features];
            var dy = TensorSpans.Of<T>(gradient);
            var db = sums.AsSpan(features, features);
            if (standardizer is null)
            {
                for (int r = first * rows; r < last * rows; r++) TensorPrimitives.Add(dy.Slice(r * features, features), db, db);
                return;
            }
            var dp = TensorSpans.Of<T>(productGradient);
            var s = TensorSpans.Of<T>(standardized!);
            var g = TensorSpans.Of<T>(gain!);
            var dg = sums.AsSpan(0, features);
            for (int t = first; t < last; t++)
            {
                for (int r = 0; r < rows; r++)
                {
                    int at = t * size + r * features;
                    var dyr = dy.Slice(at, features);
                    TensorPrimitives.MultiplyAdd(dyr, s.Slice(at, features), dg, dg);
                    TensorPrimitives.Add(dyr, db, db);
                    TensorPrimitives.Multiply(dyr, g, dp.Slice(at, features));
                }
                standardizer.Backward(dp.Slice(t * size, size), t, scratch);
            }
        });
        var total = new T[2 * features];
        foreach (var sums in partSums) TensorPrimitives.Add(total, sums, total);
        var affine = tensor(total.Select(double.CreateChecked).ToArray(), dtype: gradient.dtype, device: gradient.device);

        int inputs = (int)input.shape[2];
        var inputGradient = empty(steps, rows, inputs, dtype: gradient.dtype, device: gradient.device);
        new StepProduct<T>(weight).Multiply(productGradient.view(1, steps * rows, features), 0, TensorSpans.Of<T>(inputGradient));
        var weightGradient = SequenceWeightGradient.Compute<T>(productGradient, input, steps * rows);
        return new List<Tensor>
        {
            inputGradient, weightGradient, standardizer is null ? null! : affine.narrow(0, 0, features), affine.narrow(0, features, features), null!,
        };
    }

    /// <summary>Into how many parts <see cref="ForEachPart"/> cuts <paramref name="steps"/> steps of <paramref name="size"/> values.</summary>
    private static int Parts(int steps, int size) => (int)Math.Clamp((long)steps * size / PartValues, 1, steps);

    /// <summary>
    /// Runs <paramref name="body"/>(part, first, last) over steps [first, last) for each of <see cref="Parts"/> contiguous
    /// parts, on up to libtorch's intra-op thread count of threads (<see cref="IntraOpThreads"/>).
    /// </summary>
    private static void ForEachPart(int steps, int size, Action<int, int, int> body)
    {
        int parts = Parts(steps, size);
        IntraOpThreads.For(parts, torch.get_num_threads(), part => body(part, steps * part / parts, steps * (part + 1) / parts));
    }
}
