using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized;

/// <summary>
/// Streaming count, mean and central moments up to the fourth, so the kurtosis of many values (gate activations
/// over a whole evaluation set) is computed without keeping them. Each batch's moments are computed in float64
/// and merged with the pairwise update of Pébay (2008), which is stable where raw power sums are not.
/// </summary>
internal sealed class MomentAccumulator
{
    private double _mean;
    private double _m2;
    private double _m3;
    private double _m4;

    /// <summary>Values seen.</summary>
    public long Count { get; private set; }

    /// <summary>Mean of the values (0 before any).</summary>
    public double Mean => _mean;

    /// <summary>Population variance (0 before two values).</summary>
    public double Variance => Count == 0 ? 0 : _m2 / Count;

    /// <summary>Population kurtosis <c>m4 / m2^2</c>; NaN with fewer than two values or zero variance.</summary>
    public double Kurtosis => Count < 2 || _m2 <= 0 ? double.NaN : Count * _m4 / (_m2 * _m2);

    /// <summary>Adds every element of <paramref name="values"/> (any shape, any device).</summary>
    public void Add(Tensor values)
    {
        ArgumentNullException.ThrowIfNull(values);
        long n = values.numel();
        if (n == 0) return;
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var x = values.detach().reshape(-1).to_type(ScalarType.Float64);
        var mean = x.mean();
        var d = x - mean;
        var d2 = d.pow(Scalars.Two);
        var sums = stack(new[] { d2.sum(), (d2 * d).sum(), d2.pow(Scalars.Two).sum() }).cpu().data<double>().ToArray();
        Merge(n, mean.cpu().item<double>(), sums[0], sums[1], sums[2]);
    }

    /// <summary>Adds one value.</summary>
    public void Add(double value) => Merge(1, value, 0, 0, 0);

    /// <summary>Merges a group of <paramref name="n"/> values with the given mean and central sums (Pébay 2008, eq. 3.1).</summary>
    private void Merge(long n, double mean, double m2, double m3, double m4)
    {
        if (n == 0) return;
        if (Count == 0)
        {
            (Count, _mean, _m2, _m3, _m4) = (n, mean, m2, m3, m4);
            return;
        }
        double na = Count, nb = n, nx = na + nb;
        double delta = mean - _mean;
        double d2 = delta * delta, d3 = d2 * delta, d4 = d2 * d2;
        double m4x = _m4 + m4
            + d4 * na * nb * (na * na - na * nb + nb * nb) / (nx * nx * nx)
            + 6 * d2 * (na * na * m2 + nb * nb * _m2) / (nx * nx)
            + 4 * delta * (na * m3 - nb * _m3) / nx;
        double m3x = _m3 + m3
            + d3 * na * nb * (na - nb) / (nx * nx)
            + 3 * delta * (na * m2 - nb * _m2) / nx;
        double m2x = _m2 + m2 + d2 * na * nb / nx;
        _mean += delta * nb / nx;
        (_m2, _m3, _m4) = (m2x, m3x, m4x);
        Count += n;
    }
}
