using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized;

/// <summary>
/// Kurtosis with population moments, <c>Kurt(x) = mean(((x - mu) / sigma)^4)</c> over all elements: 1.8 for a
/// uniform distribution, 3 for a Gaussian, 6 for a Laplace; always &gt;= 1. Differentiable (torch ops), so KURE
/// can back-propagate through it.
/// </summary>
internal static class Kurtosis
{
    /// <summary>Floor of the squared variance, so a constant tensor gives 0 (and a finite gradient) instead of 0/0.</summary>
    public static readonly Scalar SquaredVarianceFloor = 1e-30;

    /// <summary>The kurtosis of every element of <paramref name="x"/> as a scalar tensor (graph attached).</summary>
    public static Tensor Of(Tensor x) => RowStatistic.OfAll(x, OfRowsOf, "kurtosis");

    /// <summary>
    /// The kurtosis of each row of a matrix <paramref name="x"/> (each output unit's weights), a vector with one value per
    /// row (graph attached).
    /// </summary>
    public static Tensor OfRows(Tensor x) => RowStatistic.OfEachRow(x, OfRowsOf, "kurtosis");

    private static Tensor OfRowsOf(Tensor x)
    {
        using var scope = NewDisposeScope();
        var centered = x - x.mean([1L], keepdim: true);
        var squared = centered.pow(Scalars.Two);
        var variance = squared.mean([1L]);
        var fourth = squared.pow(Scalars.Two).mean([1L]);
        return (fourth / variance.pow(Scalars.Two).clamp_min(SquaredVarianceFloor)).MoveToOuterDisposeScope();
    }

    /// <summary>The kurtosis of <paramref name="x"/> as a number (computed in float64, no graph).</summary>
    public static double Value(Tensor x)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        return Of(x.detach().to_type(ScalarType.Float64)).item<double>();
    }
}
