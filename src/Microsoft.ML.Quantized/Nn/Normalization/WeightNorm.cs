using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized;

/// <summary>
/// Weight normalization of a (quantized) weight matrix, row by row (Salimans &amp; Kingma 2016, as used on
/// quantized LSTMs by Hou et al. 2019): <c>W~ = g * Q(W) / ||Q(W)||_row</c>, so each row of the effective
/// weight has norm <c>g</c> whatever scale the quantizer produced.
/// </summary>
/// <remarks>
/// The learned gain <c>g</c> (parameter <c>gain</c>, one per row) starts at the row norms of the initial float
/// weights, so at initialization the effective weight has the same row norms as the float weight and the cell
/// starts at the float model's scale whichever quantizer is used.
/// <para>A row that quantizes to all zeros (possible under a per-tensor uniform step, max |w| / (2^(b-1) - 1), when every
/// weight of the row falls below half a step) outputs zeros and passes its gradient on to <c>Q(W)</c> unscaled (factor 1),
/// so its float weights can grow out of the zero bin. <c>g / ||Q(W)||</c> there would be <c>g / 0</c>: with a floor of
/// 1e-12 on the norm it made that row's gradient about 1e12 times too large, and the global gradient clip then shrank
/// every other parameter's step to nothing (uniform 4-bit + weight norm on the Brown word LM: gradient norm 1e7 on average
/// over the first epoch, 6e9 at the largest, before this rule).</para>
/// </remarks>
internal sealed class WeightNorm : nn.Module<Tensor, Tensor>
{
    private readonly Parameter gain;

    /// <summary>Creates the normalization for a weight of shape [rows, columns].</summary>
    /// <param name="name">Module name.</param>
    /// <param name="initialWeight">The float weight at initialization; its row norms initialize the gain.</param>
    public WeightNorm(string name, Tensor initialWeight) : base(name)
    {
        if (initialWeight.dim() != 2)
            throw new ArgumentException($"WeightNorm needs a 2-D weight; got shape [{string.Join(", ", initialWeight.shape)}].", nameof(initialWeight));
        using (no_grad())
        {
            using var squared = initialWeight.detach().pow(Scalars.Two);
            using var sum = squared.sum(1);
            gain = new Parameter(sum.sqrt());
        }
        register_parameter("gain", gain);
    }

    /// <summary>The learned row norms g, shape [rows].</summary>
    public Parameter Gain => gain;

    /// <summary>
    /// Rescales each row of <paramref name="weight"/> (shape [rows, columns]) to norm g; an all-zero row stays zero, its
    /// gradient passed on unscaled.
    /// </summary>
    public override Tensor forward(Tensor weight)
    {
        using var scope = NewDisposeScope();
        var squaredNorm = weight.pow(Scalars.Two).sum(1, keepdim: true);
        var zero = squaredNorm.eq(Scalars.Zero);
        // The norm of an all-zero row is replaced by 1 before the division too, not only the scale after it: the division's
        // infinite derivative would otherwise reach g's gradient as 0 * inf = NaN.
        var norm = squaredNorm.masked_fill(zero, Scalars.One).sqrt();
        var scale = (gain.unsqueeze(1) / norm).masked_fill(zero, Scalars.One);
        return (weight * scale).MoveToOuterDisposeScope();
    }
}
