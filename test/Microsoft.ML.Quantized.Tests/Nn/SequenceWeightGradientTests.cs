using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized.Tests;

/// <summary>
/// <see cref="SequenceWeightGradient"/>, the recurrent weight's gradient over a whole sequence (<c>dR^T H</c>), against
/// libtorch's product in float64 (an independent computation): both kernels, depths that span several depth blocks and end
/// in a partial one, row counts that leave a partial panel (the GRU's 3H), column counts that leave a partial block, and
/// inputs with a step more than the product reads (the sequence functions' h of every step, h0 first).
/// </summary>
[TestClass]
public sealed class SequenceWeightGradientTests
{
    [TestMethod]
    [DataRow(1, 3, 8, 5, true)]
    [DataRow(3, 7, 9, 17, true)]
    [DataRow(40, 10, 36, 12, true)]
    [DataRow(100, 32, 64, 16, true)]
    [DataRow(40, 10, 36, 12, false)]
    public void Float64GradientEqualsLibTorch(int steps, int rows, int features, int hidden, bool managed)
        => AssertGradient<double>(ScalarType.Float64, steps, rows, features, hidden, managed, 1e-12);

    [TestMethod]
    [DataRow(100, 32, 1024, 256, true)]
    [DataRow(35, 20, 900, 300, true)]
    [DataRow(35, 20, 900, 300, false)]
    public void Float32GradientEqualsLibTorch(int steps, int rows, int features, int hidden, bool managed)
        // The quickstart's LSTM (3,200 terms deep: 13 depth blocks), a Brown-sized GRU (3H = 900 rows, 300 columns).
        => AssertGradient<float>(ScalarType.Float32, steps, rows, features, hidden, managed, 1e-5);

    private static void AssertGradient<T>(ScalarType dtype, int steps, int rows, int features, int hidden, bool managed, double relativeTolerance)
        where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
    {
        bool machineDefault = StepProduct.Managed;
        StepProduct.Managed = managed;
        try
        {
            using var scope = NewDisposeScope();
            manual_seed(steps * 1000 + features + hidden);
            var gradients = randn(steps, rows, features, dtype: dtype);
            var hiddens = randn(steps + 1, rows, hidden, dtype: dtype);
            var result = SequenceWeightGradient.Compute<T>(gradients, hiddens, steps * rows);
            CollectionAssert.AreEqual(new long[] { features, hidden }, result.shape);
            var reference = gradients.to(ScalarType.Float64).view(steps * rows, features).t()
                .mm(hiddens.to(ScalarType.Float64).narrow(0, 0, steps).reshape(steps * rows, hidden)).data<double>().ToArray();
            var values = result.to(ScalarType.Float64).contiguous().data<double>().ToArray();
            // Each value sums steps * rows products of standard normals: the rounding error grows with the square root of that.
            double tolerance = relativeTolerance * Math.Sqrt(steps * rows);
            for (int i = 0; i < reference.Length; i++)
                Assert.AreEqual(reference[i], values[i], tolerance, $"row {i / hidden}, column {i % hidden} ({(managed ? "managed" : "libtorch")})");
        }
        finally { StepProduct.Managed = machineDefault; }
    }
}
