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
/// starts at the float model's scale whichever quantizer is used. A row that quantizes to all zeros stays zero.
/// </remarks>
internal sealed class WeightNorm : nn.Module<Tensor, Tensor>
{
    private static readonly Scalar MinSquaredNorm = 1e-24;
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

    /// <summary>Rescales each row of <paramref name="weight"/> (shape [rows, columns]) to norm g.</summary>
    public override Tensor forward(Tensor weight)
    {
        using var scope = NewDisposeScope();
        var norm = weight.pow(Scalars.Two).sum(1, keepdim: true).clamp_min(MinSquaredNorm).sqrt();
        return (weight * (gain.unsqueeze(1) / norm)).MoveToOuterDisposeScope();
    }
}
