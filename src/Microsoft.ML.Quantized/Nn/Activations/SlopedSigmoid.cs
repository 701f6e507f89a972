using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized;

/// <summary>
/// HitNet's slope-adjustable sigmoid (Wang et al. 2018): <c>sigma(x / lambda)</c>. lambda = 1 is the plain sigmoid
/// (no division); lambda &lt; 1 is steeper, pushing outputs toward the ternary levels. See <see cref="ActivationSlopes"/>.
/// </summary>
internal sealed class SlopedSigmoid : nn.Module<Tensor, Tensor>
{
    /// <summary>Creates the activation.</summary>
    /// <param name="lambda">Slope lambda in (0, 4].</param>
    public SlopedSigmoid(double lambda = 1.0) : base(nameof(SlopedSigmoid))
    {
        Lambda = SlopeChecks.Check(lambda, nameof(lambda));
    }

    /// <summary>The slope lambda.</summary>
    public double Lambda { get; }

    /// <inheritdoc />
    public override Tensor forward(Tensor input) => Apply(input, Lambda);

    /// <summary><c>sigma(x / lambda)</c>; the plain sigmoid when lambda = 1.</summary>
    public static Tensor Apply(Tensor x, double lambda)
    {
        if (lambda == 1.0) return torch.sigmoid(x);
        SlopeChecks.Check(lambda, nameof(lambda));
        using var scope = NewDisposeScope();
        using var slope = lambda.ToScalar();
        return torch.sigmoid(x.div(slope)).MoveToOuterDisposeScope();
    }
}

/// <summary>Validation of HitNet slopes shared by <see cref="SlopedSigmoid"/> and <see cref="SlopedTanh"/>.</summary>
internal static class SlopeChecks
{
    /// <summary>Largest slope accepted (see <see cref="ActivationSlopes"/>).</summary>
    public const double MaxLambda = 4.0;

    /// <summary>Returns <paramref name="lambda"/> when it lies in (0, 4]; otherwise throws naming <paramref name="name"/>.</summary>
    public static double Check(double lambda, string name)
    {
        if (!(lambda > 0 && lambda <= MaxLambda))
            throw new ArgumentOutOfRangeException(name, lambda,
                $"Activation slope {name} = {lambda} is out of range: use a value in (0, {MaxLambda}] (1 = the standard function, < 1 steeper).");
        return lambda;
    }
}
