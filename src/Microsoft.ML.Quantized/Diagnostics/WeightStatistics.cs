using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized;

/// <summary>
/// Distribution of one float (shadow) weight tensor. Kurtosis 1.8 is uniform (what KURE aims for), 3 Gaussian;
/// a large <see cref="MaxAbs"/> / <see cref="StdDev"/> means outliers stretch a max-based quantization step.
/// </summary>
/// <param name="Name">The tensor's name, e.g. <c>layers.0.weight_hh</c>, <c>embedding</c>, <c>decoder.weight</c>.</param>
/// <param name="Count">Elements.</param>
/// <param name="Mean">Mean.</param>
/// <param name="StdDev">Population standard deviation.</param>
/// <param name="Kurtosis">Population kurtosis.</param>
/// <param name="MaxAbs">Largest magnitude.</param>
/// <param name="MeanRowKurtosis">
/// Mean over the rows of a matrix (one output unit's weights each) of the row's kurtosis, what
/// <see cref="KureOptions.PerRow"/> regularizes; NaN for a tensor that is not a matrix with at least 2 columns. Rows of
/// different scales pool into a tensor kurtosis above their mean.
/// </param>
public sealed record WeightStatistics(string Name, long Count, double Mean, double StdDev, double Kurtosis, double MaxAbs, double MeanRowKurtosis)
{
    /// <summary>The statistics of <paramref name="weight"/> (computed in float64, no graph).</summary>
    internal static WeightStatistics Of(string name, Tensor weight)
    {
        ArgumentNullException.ThrowIfNull(weight);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var matrix = weight.detach().to_type(ScalarType.Float64);
        var w = matrix.reshape(-1);
        double mean = w.mean().item<double>();
        using var meanScalar = mean.ToScalar();
        double std = w.numel() == 0 ? 0 : w.sub(meanScalar).pow(Scalars.Two).mean().sqrt().item<double>();
        double kurtosis = w.numel() < 2 ? double.NaN : Microsoft.ML.Quantized.Kurtosis.Value(w);
        double maxAbs = w.numel() == 0 ? 0 : w.abs().max().item<double>();
        double rowKurtosis = RowStatistic.HasRows(matrix) ? Microsoft.ML.Quantized.Kurtosis.OfRows(matrix).mean().item<double>() : double.NaN;
        return new WeightStatistics(name, w.numel(), mean, std, kurtosis, maxAbs, rowKurtosis);
    }
}
