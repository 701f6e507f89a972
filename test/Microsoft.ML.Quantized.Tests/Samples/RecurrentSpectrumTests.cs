using Microsoft.ML.Quantized.Samples.Reproduction;
using TorchSharp;
using static Microsoft.ML.Quantized.Tests.RecurrentTestSupport;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized.Tests.Samples;

/// <summary>The normalization study's lambda_1 diagnostic against hand-worked matrices and tiny cells.</summary>
[TestClass]
public sealed class RecurrentSpectrumTests
{
    [TestMethod]
    public void Largest_singular_value_of_hand_worked_matrices()
    {
        using var scope = NewDisposeScope();
        // [[3, 0], [4, 0]]: W^T W = [[25, 0], [0, 0]], so lambda_1 = 5.
        Assert.AreEqual(5.0, RecurrentSpectrum.LargestSingularValue(tensor(new float[] { 3, 0, 4, 0 }).reshape(2, 2)), 1e-9);
        // A rank-one all-ones [m, n] matrix has lambda_1 = sqrt(m n).
        Assert.AreEqual(Math.Sqrt(12.0 * 3.0), RecurrentSpectrum.LargestSingularValue(ones(12, 3)), 1e-9);
    }

    [TestMethod]
    public void Float_cell_reports_the_same_lambda_before_and_after_and_no_gain()
    {
        manual_seed(3);
        using var scope = NewDisposeScope();
        using var cell = new QuantizedLstmCell("lstm", 4, Options(RecurrentCellKind.Lstm, 3), Float, Float);
        var spectrum = RecurrentSpectrum.Of(cell);
        // Independent check: the square root of the largest eigenvalue of W^T W, by power iteration in doubles.
        var w = cell.WeightHh.detach().to_type(ScalarType.Float64);
        var gram = w.t().matmul(w);
        var v = ones(3, dtype: ScalarType.Float64);
        for (int k = 0; k < 500; k++) v = gram.matmul(v) / gram.matmul(v).norm();
        double expected = Math.Sqrt(v.dot(gram.matmul(v)).item<double>());
        Assert.AreEqual(expected, spectrum.FloatLambda1, 1e-6);
        Assert.AreEqual(spectrum.FloatLambda1, spectrum.QuantizedLambda1, 1e-12);
        Assert.IsTrue(double.IsNaN(spectrum.MeanGain));
    }

    [TestMethod]
    public void Weight_norm_sets_the_quantized_matrix_scale_through_its_gain()
    {
        // Sign weights of all +1 under weight norm with every gain 0.5: each row of the effective [4H, H] matrix is
        // 0.5 / sqrt(H) * ones, so lambda_1 = 0.5 / sqrt(H) * sqrt(4H * H) = 0.5 * sqrt(4H) = 2 for H = 4.
        using var scope = NewDisposeScope();
        var options = Options(RecurrentCellKind.Lstm, 4, normalization: RecurrentNormalization.Weight);
        using var cell = new QuantizedLstmCell("lstm", 2, options, Sign, Float);
        using (no_grad())
        {
            cell.WeightHh.copy_(ones(16, 4) * 0.3);
            cell.WeightHhNorm!.Gain.fill_(0.5);
        }
        var spectrum = RecurrentSpectrum.Of(cell);
        Assert.AreEqual(2.0, spectrum.QuantizedLambda1, 1e-5);
        Assert.AreEqual(0.3 * Math.Sqrt(16 * 4), spectrum.FloatLambda1, 1e-5);
        Assert.AreEqual(0.5, spectrum.MeanGain, 1e-7);
    }
}
