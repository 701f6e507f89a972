using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized;

/// <summary>
/// Layer normalization (Ba et al. 2016) for the recurrent cells: each row (one sequence at one step) of <c>W_x x</c>,
/// <c>W_h h</c> or the LSTM cell state is split into <see cref="Groups"/> equal groups of features, each group is brought
/// to mean 0 and variance 1 (biased) on its own, then every feature is scaled by a learned gain (init 1) and shifted by a
/// learned bias (init 0).
/// </summary>
/// <remarks>
/// Used by <see cref="RecurrentNormalization.Layer"/>. <see cref="LayerNormForm.PerGate"/> (Hou et al. 2019) normalizes
/// each gate's H pre-activations on their own: G groups, which is <c>layer_norm</c> of the [..., G, H] view over its
/// last dimension, without affine, then the gain and bias [G*H] on the flat [..., G*H] (the same as one
/// <c>LayerNorm(H)</c> per gate, as in the authors' code). <see cref="LayerNormForm.Joint"/> takes one group of G*H, and
/// the LSTM adds one for the cell state. Statistics are per row, so training and evaluation behave the same and any
/// batch size works.
/// </remarks>
internal sealed class RecurrentLayerNorm : nn.Module<Tensor, Tensor>
{
    private readonly long[] normalizedShape;
    private readonly Parameter gain;
    private readonly Parameter bias;

    /// <summary>Creates the normalization of <paramref name="features"/> features in <paramref name="groups"/> groups.</summary>
    public RecurrentLayerNorm(string name, long features, int groups = 1, double epsilon = 1e-5) : base(name)
    {
        if (features <= 0) throw new ArgumentOutOfRangeException(nameof(features), features, "Layer normalization needs at least one feature.");
        if (groups <= 0 || features % groups != 0)
            throw new ArgumentOutOfRangeException(nameof(groups), groups, $"Layer normalization groups must divide the {features} features.");
        Groups = groups;
        normalizedShape = new[] { features / groups };
        Epsilon = epsilon;
        gain = new Parameter(ones(features));
        bias = new Parameter(zeros(features));
        register_parameter("gain", gain);
        register_parameter("bias", bias);
    }

    /// <summary>Groups normalized separately: 1 (all features together) or the gate count G (per gate).</summary>
    public int Groups { get; }

    /// <summary>Added to the variance before the square root.</summary>
    public double Epsilon { get; }

    /// <summary>Learned gain, shape [features], init 1.</summary>
    public Parameter Gain => gain;

    /// <summary>Learned bias, shape [features], init 0.</summary>
    public Parameter Bias => bias;

    /// <summary>Normalizes <paramref name="input"/> (shape [..., features]) over each group of its last dimension.</summary>
    public override Tensor forward(Tensor input)
    {
        if (Groups == 1) return nn.functional.layer_norm(input, normalizedShape, gain, bias, Epsilon);
        using var scope = NewDisposeScope();
        return bias.addcmul(Standardize(input), gain, Scalars.One).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Each group of <paramref name="input"/>'s last dimension at mean 0 and variance 1, before gain and bias: a cell that
    /// adds the result to another term applies them as <c>term.addcmul(Standardize(x), Gain)</c> with <see cref="Bias"/>
    /// folded into that term.
    /// </summary>
    public Tensor Standardize(Tensor input)
    {
        if (Groups == 1) return nn.functional.layer_norm(input, normalizedShape, null, null, Epsilon);
        using var scope = NewDisposeScope();
        return nn.functional.layer_norm(input.unflatten(input.dim() - 1, Groups, normalizedShape[0]), normalizedShape, null, null, Epsilon)
            .flatten(-2).MoveToOuterDisposeScope();
    }
}
