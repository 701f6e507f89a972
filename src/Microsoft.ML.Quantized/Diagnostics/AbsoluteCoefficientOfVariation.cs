using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized;

/// <summary>
/// The coefficient of variation of the absolute deviations from the mean, <c>std(|d|) / mean(|d|)</c> with
/// <c>d = x - mean(x)</c> and population moments: 1/sqrt(3) for a uniform distribution, sqrt(pi/2 - 1) = 0.756 for a
/// Gaussian, 1 for a Laplace, 0 for two points at +-a. Scale-free like the kurtosis, but built from the first two moments
/// of |d|. Differentiable (torch ops), so a KURE term can back-propagate through it
/// (<see cref="UniformityStatistic.AbsoluteCoefficientOfVariation"/>).
/// </summary>
internal static class AbsoluteCoefficientOfVariation
{
    /// <summary>The value for a uniform distribution, 1/sqrt(3).</summary>
    public static readonly double Uniform = 1 / Math.Sqrt(3);

    /// <summary>Floor of mean |d|, so a constant tensor gives 0 (and a finite gradient) instead of 0/0.</summary>
    private static readonly Scalar MeanFloor = 1e-15;

    /// <summary>The statistic of every element of <paramref name="x"/> as a scalar tensor (graph attached).</summary>
    public static Tensor Of(Tensor x) => RowStatistic.OfAll(x, OfRowsOf, "coefficient of variation");

    /// <summary>The statistic of each row of a matrix <paramref name="x"/>, a vector with one value per row (graph attached).</summary>
    public static Tensor OfRows(Tensor x) => RowStatistic.OfEachRow(x, OfRowsOf, "coefficient of variation");

    private static Tensor OfRowsOf(Tensor x)
    {
        using var scope = NewDisposeScope();
        var deviation = (x - x.mean([1L], keepdim: true)).abs();
        var mean = deviation.mean([1L], keepdim: true);
        var spread = (deviation - mean).pow(Scalars.Two).mean([1L]).sqrt();
        return (spread / mean.squeeze(1).clamp_min(MeanFloor)).MoveToOuterDisposeScope();
    }
}
