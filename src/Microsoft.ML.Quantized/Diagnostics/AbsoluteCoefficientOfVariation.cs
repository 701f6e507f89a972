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
    public static Tensor Of(Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (x.numel() < 2) throw new ArgumentException($"The coefficient of variation needs at least 2 values; got {x.numel()}.", nameof(x));
        return OfRowsOf(x.reshape(1, -1)).reshape(Array.Empty<long>());
    }

    /// <summary>The statistic of each row of a matrix <paramref name="x"/>, a vector with one value per row (graph attached).</summary>
    public static Tensor OfRows(Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (!Kurtosis.HasRows(x)) throw new ArgumentException($"Row statistics need a matrix with at least 2 columns; got shape [{string.Join(", ", x.shape)}].", nameof(x));
        return OfRowsOf(x);
    }

    private static Tensor OfRowsOf(Tensor x)
    {
        using var scope = NewDisposeScope();
        var deviation = (x - x.mean([1L], keepdim: true)).abs();
        var mean = deviation.mean([1L], keepdim: true);
        var spread = (deviation - mean).pow(Scalars.Two).mean([1L]).sqrt();
        return (spread / mean.squeeze(1).clamp_min(MeanFloor)).MoveToOuterDisposeScope();
    }
}
