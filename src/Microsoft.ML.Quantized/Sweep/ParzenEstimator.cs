namespace Microsoft.ML.Quantized.Sweep;

/// <summary>
/// The density of one axis that <see cref="TreeParzenTuner"/> fits to a set of observations (Bergstra et al. 2011).
/// Categorical axes: Laplace-smoothed frequencies (one pseudo-count per choice, so no choice has zero probability;
/// on a synthetic 8-axis objective this beat a prior of one pseudo-count spread over all choices).
/// Numeric axes: a Parzen mixture of normal kernels truncated to the range, one per observation plus a wide prior
/// kernel at the middle of the range, in internal (log for log ranges) coordinates; each kernel's width is the larger
/// gap to its neighbours, clipped to [range / min(100, n + 1), range] (hyperopt's rule).
/// </summary>
internal sealed class ParzenEstimator
{
    private readonly SearchDimension _dimension;
    private readonly double[] _probabilities = Array.Empty<double>();
    private readonly double[] _mu = Array.Empty<double>();
    private readonly double[] _sigma = Array.Empty<double>();
    private readonly double[] _mass = Array.Empty<double>();

    public ParzenEstimator(SearchDimension dimension, IReadOnlyList<double> values)
    {
        _dimension = dimension;
        if (dimension.IsCategorical)
        {
            _probabilities = new double[dimension.Count];
            for (int i = 0; i < dimension.Count; i++) _probabilities[i] = 1.0;
            foreach (var v in values) _probabilities[(int)v] += 1.0;
            double total = _probabilities.Sum();
            for (int i = 0; i < _probabilities.Length; i++) _probabilities[i] /= total;
            return;
        }

        double low = dimension.Low, high = dimension.High, width = high - low;
        if (width <= 0) return;
        var centers = values.Select(dimension.ToInternal).Append((low + high) / 2).OrderBy(x => x).ToArray();
        int n = centers.Length;
        _mu = centers;
        _sigma = new double[n];
        double minSigma = width / Math.Min(100.0, n + 1.0);
        for (int i = 0; i < n; i++)
        {
            double left = i > 0 ? centers[i] - centers[i - 1] : centers[i] - low;
            double right = i < n - 1 ? centers[i + 1] - centers[i] : high - centers[i];
            _sigma[i] = Math.Clamp(Math.Max(left, right), minSigma, width);
        }
        // The prior kernel spans the whole range.
        int prior = Array.IndexOf(centers, (low + high) / 2);
        _sigma[prior] = width;
        _mass = new double[n];
        for (int i = 0; i < n; i++)
            _mass[i] = Math.Max(1e-12, NormalCdf((high - _mu[i]) / _sigma[i]) - NormalCdf((low - _mu[i]) / _sigma[i]));
    }

    /// <summary>Draws a value (a choice index or a snapped value of the axis).</summary>
    public double Sample(Random random)
    {
        if (_dimension.IsCategorical)
        {
            double u = random.NextDouble(), sum = 0;
            for (int i = 0; i < _probabilities.Length; i++)
            {
                sum += _probabilities[i];
                if (u < sum) return i;
            }
            return _probabilities.Length - 1;
        }
        if (_mu.Length == 0) return _dimension.Snap(_dimension.Min);
        int k = random.Next(_mu.Length);
        double low = _dimension.Low, high = _dimension.High, x = _mu[k];
        for (int tries = 0; tries < 32; tries++)
        {
            x = _mu[k] + _sigma[k] * StandardNormal(random);
            if (x >= low && x <= high) break;
        }
        return _dimension.FromInternal(Math.Clamp(x, low, high));
    }

    /// <summary>Log density of a value of the axis (a choice index or the value itself).</summary>
    public double LogDensity(double value)
    {
        if (_dimension.IsCategorical) return Math.Log(_probabilities[(int)value]);
        if (_mu.Length == 0) return 0;
        double x = _dimension.ToInternal(value), p = 0;
        for (int i = 0; i < _mu.Length; i++)
        {
            double z = (x - _mu[i]) / _sigma[i];
            p += Math.Exp(-0.5 * z * z) / (_sigma[i] * Math.Sqrt(2 * Math.PI) * _mass[i]);
        }
        return Math.Log(Math.Max(p / _mu.Length, 1e-300));
    }

    private static double StandardNormal(Random random)
    {
        double u1 = 1.0 - random.NextDouble(), u2 = random.NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }

    private static double NormalCdf(double z) => 0.5 * (1 + Erf(z / Math.Sqrt(2)));

    /// <summary>Abramowitz and Stegun 7.1.26 (absolute error below 1.5e-7).</summary>
    private static double Erf(double x)
    {
        double sign = Math.Sign(x);
        x = Math.Abs(x);
        double t = 1 / (1 + 0.3275911 * x);
        double y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.Exp(-x * x);
        return sign * y;
    }
}
