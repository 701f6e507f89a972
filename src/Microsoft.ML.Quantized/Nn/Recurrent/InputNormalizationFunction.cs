using System.Numerics;
using TorchSharp;
using static TorchSharp.torch;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace Microsoft.ML.Quantized;

/// <summary>
/// The normalization of a cell's input term for every step at once, <c>Y = bias + gain * norm(P)</c> with <c>P = x W_ih^T</c>
/// [T, B, G*H], as one autograd operation with a hand-written backward pass: per-group layer normalization or recurrent batch
/// normalization (<see cref="SequenceNormalization"/>, the same <see cref="SequenceStandardizer{T}"/> as the recurrent term's),
/// the affine in the same pass, as vectorized managed code over the steps split between libtorch's intra-op threads.
/// </summary>
/// <remarks>
/// The cells run it where they run their sequence function (<see cref="QuantizedRecurrentCell.RunsSequenceFunction"/>); the
/// autograd loop keeps libtorch's operations, and the tests compare the two. What it replaces: <c>layer_norm</c> over the
/// [T, B, G, H] view (or batch norm's statistics as products and broadcasts), <c>addcmul</c> with the gain and the bias added
/// twice, a dozen passes over the [T, B, G*H] terms each way, most of them single-threaded; here the forward pass reads
/// <c>P</c> once and the backward pass reads the output's gradient and the standardized terms once each.
/// </remarks>
internal sealed class InputNormalizationFunction : SequenceFunction<InputNormalizationFunction, SequenceNormalization>
{
    // The passes are cut into parts of about this many values (at least a step each): a few per thread on the quickstart's
    // shape, and a short sequence in one part (a second thread costs more than it saves).
    private const int PartValues = 1 << 17;

    /// <inheritdoc/>
    public override string Name => "QuantizedInputNormalization";

    /// <summary>
    /// <c>bias + gain * norm(products)</c> for <paramref name="products"/> [T, B, features] and <paramref name="gain"/>,
    /// <paramref name="bias"/> [features]; <paramref name="normalization"/> must normalize. In training with batch statistics
    /// it updates the running statistics as <see cref="RecurrentBatchNorm.ForwardSteps"/> does.
    /// </summary>
    public static Tensor Run(Tensor products, Tensor gain, Tensor bias, SequenceNormalization normalization)
        => apply(products, gain, bias, normalization)[0];

    /// <inheritdoc/>
    protected override (Tensor Output, List<Tensor> Kept) Forward<T>(object[] vars, SequenceNormalization normalization)
    {
        var (products, gain, bias) = (((Tensor)vars[0]).contiguous(), ((Tensor)vars[1]).contiguous(), ((Tensor)vars[2]).contiguous());
        int steps = (int)products.shape[0], rows = (int)products.shape[1], features = (int)products.shape[2], size = rows * features;
        var standardizer = new SequenceStandardizer<T>(normalization, steps, rows, features, products.dtype, products.device);
        var output = empty_like(products);
        ForEachPart(steps, size, (_, first, last) =>
        {
            var p = TensorSpans.Of<T>(products);
            var y = TensorSpans.Of<T>(output);
            var g = TensorSpans.Of<T>(gain);
            var b = TensorSpans.Of<T>(bias);
            for (int t = first; t < last; t++)
            {
                p.Slice(t * size, size).CopyTo(standardizer.Step(t));
                var standardized = standardizer.Forward(t);
                for (int r = 0; r < rows; r++)
                    TensorPrimitives.MultiplyAdd(standardized.Slice(r * features, features), g, b, y.Slice(t * size + r * features, features));
            }
        });
        standardizer.UpdateRunningStatistics();
        return (output, new List<Tensor> { gain, standardizer.Standardized, standardizer.InverseDeviations });
    }

    /// <inheritdoc/>
    protected override List<Tensor> Backward<T>(Tensor outputGradient, List<Tensor> saved, SequenceNormalization normalization)
    {
        var (gain, standardized) = (saved[0], saved[1]);
        var standardizer = new SequenceStandardizer<T>(normalization, standardized, saved[2]);
        var gradient = outputGradient.contiguous();
        int steps = (int)gradient.shape[0], rows = (int)gradient.shape[1], features = (int)gradient.shape[2], size = rows * features;
        var productGradient = empty_like(gradient);
        // Each part sums its own gain and bias gradients; the parts' sums are added in order afterwards.
        var partSums = new T[Parts(steps, size)][];
        ForEachPart(steps, size, (part, first, last) =>
        {
            var sums = partSums[part] = new T[2 * features];
            var scratch = new T[2 * features];
            var dy = TensorSpans.Of<T>(gradient);
            var dp = TensorSpans.Of<T>(productGradient);
            var s = TensorSpans.Of<T>(standardized);
            var g = TensorSpans.Of<T>(gain);
            var dg = sums.AsSpan(0, features);
            var db = sums.AsSpan(features, features);
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
        return new List<Tensor> { productGradient, affine.narrow(0, 0, features), affine.narrow(0, features, features), null! };
    }

    /// <summary>Into how many parts <see cref="ForEachPart"/> cuts <paramref name="steps"/> steps of <paramref name="size"/> values.</summary>
    private static int Parts(int steps, int size) => (int)Math.Clamp((long)steps * size / PartValues, 1, steps);

    /// <summary>
    /// Runs <paramref name="body"/>(part, first, last) over steps [first, last) for each of <see cref="Parts"/> contiguous
    /// parts, on up to libtorch's intra-op thread count of threads, each taking the next part when it comes free: a thread
    /// whose core is busy (libtorch's own workers spin for a while after each of its parallel operations) takes fewer.
    /// </summary>
    private static void ForEachPart(int steps, int size, Action<int, int, int> body)
    {
        int parts = Parts(steps, size), threads = Math.Min(torch.get_num_threads(), parts);
        if (threads <= 1)
        {
            for (int part = 0; part < parts; part++) body(part, steps * part / parts, steps * (part + 1) / parts);
            return;
        }
        Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = threads },
            part => body(part, steps * part / parts, steps * (part + 1) / parts));
    }
}
