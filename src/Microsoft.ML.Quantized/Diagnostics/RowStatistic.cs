using static TorchSharp.torch;

namespace Microsoft.ML.Quantized;

/// <summary>
/// The shape checks shared by the per-row weight statistics (<see cref="Kurtosis"/>, <see cref="AbsoluteCoefficientOfVariation"/>):
/// each is written once over the rows of a matrix, and a whole tensor is taken as one row.
/// </summary>
internal static class RowStatistic
{
    /// <summary>Whether <paramref name="x"/> has rows of their own: a matrix with at least 2 columns (else it is one row).</summary>
    public static bool HasRows(Tensor x) => x.dim() == 2 && x.shape[1] >= 2;

    /// <summary><paramref name="ofRows"/> of every element of <paramref name="x"/> taken as one row, as a scalar tensor (graph attached).</summary>
    public static Tensor OfAll(Tensor x, Func<Tensor, Tensor> ofRows, string statistic)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (x.numel() < 2) throw new ArgumentException($"The {statistic} needs at least 2 values; got {x.numel()}.", nameof(x));
        return ofRows(x.reshape(1, -1)).reshape(Array.Empty<long>());
    }

    /// <summary><paramref name="ofRows"/> of each row of the matrix <paramref name="x"/>, a vector with one value per row (graph attached).</summary>
    public static Tensor OfEachRow(Tensor x, Func<Tensor, Tensor> ofRows, string statistic)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (x.dim() != 2) throw new ArgumentException($"The row {statistic} needs a matrix; got a tensor of shape [{string.Join(", ", x.shape)}].", nameof(x));
        if (x.shape[1] < 2) throw new ArgumentException($"The row {statistic} needs at least 2 values per row; got {x.shape[1]}.", nameof(x));
        return ofRows(x);
    }
}
