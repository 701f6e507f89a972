using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized;

/// <summary>
/// HitNet's slope-adjustable tanh (Wang et al. 2018): <c>tanh(x / lambda)</c>. lambda = 1 is the plain tanh
/// (no division); lambda &lt; 1 is steeper, pushing outputs toward -1, 0, +1. See <see cref="ActivationSlopes"/>.
/// </summary>
internal sealed class SlopedTanh : nn.Module<Tensor, Tensor>
{
    /// <summary>Creates the activation.</summary>
    /// <param name="lambda">Slope lambda in (0, 4].</param>
    public SlopedTanh(double lambda = 1.0) : base(nameof(SlopedTanh))
    {
        Lambda = SlopeChecks.Check(lambda, nameof(lambda));
    }

    /// <summary>The slope lambda.</summary>
    public double Lambda { get; }

    /// <inheritdoc />
    public override Tensor forward(Tensor input) => Apply(input, Lambda);

    /// <summary><c>tanh(x / lambda)</c>; the plain tanh when lambda = 1.</summary>
    public static Tensor Apply(Tensor x, double lambda)
    {
        if (lambda == 1.0) return torch.tanh(x);
        SlopeChecks.Check(lambda, nameof(lambda));
        using var scope = NewDisposeScope();
        using var slope = lambda.ToScalar();
        return torch.tanh(x.div(slope)).MoveToOuterDisposeScope();
    }
}
