using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized;

/// <summary>
/// Layer normalization over the last dimension (Ba et al. 2016) for the recurrent cells: each row (one sequence
/// at one step) of <c>W_x x</c>, <c>W_h h</c> or the LSTM cell state is brought to mean 0 and variance 1 over
/// its features, then scaled by a learned gain (init 1) and shifted by a learned bias (init 0).
/// </summary>
/// <remarks>
/// Used by <see cref="RecurrentNormalization.Layer"/>: the LSTM computes
/// <c>LN(W_x x) + LN(W_h h) + b</c> over all 4H gate pre-activations, and <c>h = o * tanh(LN(c))</c>;
/// the GRU normalizes the two products (3H each). Statistics are per row, so training and evaluation behave
/// the same and any batch size works.
/// </remarks>
internal sealed class RecurrentLayerNorm : nn.Module<Tensor, Tensor>
{
    private readonly long[] normalizedShape;
    private readonly Parameter gain;
    private readonly Parameter bias;

    /// <summary>Creates the normalization for <paramref name="features"/> features.</summary>
    public RecurrentLayerNorm(string name, long features, double epsilon = 1e-5) : base(name)
    {
        if (features <= 0) throw new ArgumentOutOfRangeException(nameof(features), features, "Layer normalization needs at least one feature.");
        normalizedShape = new[] { features };
        Epsilon = epsilon;
        gain = new Parameter(ones(features));
        bias = new Parameter(zeros(features));
        register_parameter("gain", gain);
        register_parameter("bias", bias);
    }

    /// <summary>Added to the variance before the square root.</summary>
    public double Epsilon { get; }

    /// <summary>Learned gain, shape [features], init 1.</summary>
    public Parameter Gain => gain;

    /// <summary>Learned bias, shape [features], init 0.</summary>
    public Parameter Bias => bias;

    /// <summary>Normalizes <paramref name="input"/> (shape [..., features]) over its last dimension.</summary>
    public override Tensor forward(Tensor input)
        => nn.functional.layer_norm(input, normalizedShape, gain, bias, Epsilon);
}
