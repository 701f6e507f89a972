namespace Microsoft.ML.Quantized;

/// <summary>The statistic of a weight tensor (or row) that the KURE term pushes toward its target (<see cref="KureOptions.Statistic"/>).</summary>
public enum UniformityStatistic
{
    /// <summary>
    /// Kurtosis <c>mean(d^4) / mean(d^2)^2</c>, d = w - mean(w): 1.8 uniform, 3 Gaussian, 6 Laplace, at least 1
    /// (KURE's statistic, Shkolnik et al. 2020). Its fourth moment weighs outliers heavily. The default.
    /// </summary>
    Kurtosis,

    /// <summary>
    /// Coefficient of variation of the absolute deviations, <c>std(|d|) / mean(|d|)</c>, d = w - mean(w): 1/sqrt(3) = 0.577
    /// uniform, 0.756 Gaussian, 1 Laplace, 0 for two points at +-a. Built from the first two moments of |d| only, so
    /// outliers weigh less than in the kurtosis (the alternative uniformity measure the KURE paper's reviewers asked about).
    /// </summary>
    AbsoluteCoefficientOfVariation,
}
