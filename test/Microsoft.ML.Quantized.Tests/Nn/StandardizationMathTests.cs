namespace Microsoft.ML.Quantized.Tests;

/// <summary>
/// <see cref="StandardizationMath"/> on hand-worked values (epsilon 0, so every figure is exact in double). The
/// sequence functions using them are checked against the autograd loop in <see cref="LstmSequenceFunctionTests"/>.
/// </summary>
[TestClass]
public sealed class StandardizationMathTests
{
    [TestMethod]
    public void GroupsAreStandardizedEachOnTheirOwn()
    {
        // One row, two groups: (1, 3) has mean 2 and deviation 1, (0, 4) mean 2 and deviation 2.
        double[] values = { 1, 3, 0, 4 };
        var inverse = new double[2];
        StandardizationMath.StandardizeGroups<double>(values, rows: 1, groups: 2, epsilon: 0, inverse);
        CollectionAssert.AreEqual(new double[] { -1, 1, -1, 1 }, values);
        CollectionAssert.AreEqual(new double[] { 1, 0.5 }, inverse);
    }

    [TestMethod]
    public void GroupBackwardRemovesTheMeanAndTheProjection()
    {
        // dx = (dy - mean(dy) - y mean(dy y)) / sigma. With two features any dy maps to 0, so three: x = (0, 3, 6) has mean 3,
        // variance 6 and y = (-a, 0, a) with a = 3 / sqrt(6).
        double[] values = { 0, 3, 6 };
        var inverse = new double[1];
        StandardizationMath.StandardizeGroups<double>(values, rows: 1, groups: 1, epsilon: 0, inverse);
        double a = 3 / Math.Sqrt(6);
        var standardized = new[] { -a, 0, a };
        for (int k = 0; k < 3; k++) Assert.AreEqual(standardized[k], values[k], 1e-15, $"y[{k}]");
        double[] gradient = { 0, 1, 0 };
        StandardizationMath.StandardizeGroupsBackward<double>(gradient, values, inverse, rows: 1, groups: 1);
        // mean(dy) = 1/3, mean(dy y) = 0: dx = (dy - 1/3) / sqrt(6) = (-1/3, 2/3, -1/3) / sqrt(6).
        double s = 1 / Math.Sqrt(6);
        var expected = new[] { -s / 3, 2 * s / 3, -s / 3 };
        for (int k = 0; k < 3; k++) Assert.AreEqual(expected[k], gradient[k], 1e-15, $"dx[{k}]");
    }

    [TestMethod]
    public void BatchStatisticsArePerFeatureOverTheRows()
    {
        // Two rows, two features: feature 0 = (1, 3): mean 2, biased variance 1; feature 1 = (2, 6): mean 4, variance 4.
        double[] values = { 1, 2, 3, 6 };
        double[] mean = new double[2], variance = new double[2], inverse = new double[2];
        StandardizationMath.StandardizeBatch<double>(values, rows: 2, epsilon: 0, mean, variance, inverse);
        CollectionAssert.AreEqual(new double[] { 2, 4 }, mean);
        CollectionAssert.AreEqual(new double[] { 1, 4 }, variance);
        CollectionAssert.AreEqual(new double[] { 1, 0.5 }, inverse);
        CollectionAssert.AreEqual(new double[] { -1, -1, 1, 1 }, values);
    }

    [TestMethod]
    public void RunningStatisticsShiftAndScaleEachRow()
    {
        double[] values = { 1, 2, 3, 6 };
        StandardizationMath.StandardizeWith<double>(values, rows: 2, mean: new double[] { 1, 2 }, inverseDeviation: new double[] { 2, 0.25 });
        CollectionAssert.AreEqual(new double[] { 0, 0, 4, 1 }, values);
    }
}
