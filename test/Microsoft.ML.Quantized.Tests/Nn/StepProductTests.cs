using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized.Tests;

/// <summary>
/// <see cref="StepProduct{T}"/>, the sequence functions' per-step recurrent product, against libtorch's product in float64
/// (an independent computation): both kernels, shapes that fill whole register tiles and shapes that leave partial row
/// tiles and column blocks, a transposed view as the right operand (the forward pass's <c>W_hh^T</c>), and shapes large
/// enough to be split across threads.
/// </summary>
[TestClass]
public sealed class StepProductTests
{
    [TestMethod]
    [DataRow(1, 3, 5, true)]
    [DataRow(7, 6, 24, true)]
    [DataRow(9, 17, 33, true)]
    [DataRow(16, 8, 32, true)]
    [DataRow(32, 256, 1024, true)]
    [DataRow(9, 17, 33, false)]
    [DataRow(32, 256, 1024, false)]
    public void Float64ProductEqualsLibTorch(int rows, int depth, int columns, bool managed)
        => AssertProduct<double>(ScalarType.Float64, rows, depth, columns, managed, 1e-12);

    [TestMethod]
    [DataRow(20, 300, 1200, true)]
    [DataRow(32, 1024, 256, true)]
    [DataRow(13, 40, 17, true)]
    [DataRow(20, 300, 1200, false)]
    public void Float32ProductEqualsLibTorch(int rows, int depth, int columns, bool managed)
        // Brown's LSTM step (20 x 300 -> 4 x 300), the quickstart's backward step (dz W_hh: 1024 deep, 256 wide), a ragged one.
        => AssertProduct<float>(ScalarType.Float32, rows, depth, columns, managed, 1e-5);

    [TestMethod]
    public void EveryStepOfTheSequenceReadsItsOwnRows()
    {
        // Steps are [rows, K] slices of one [T, rows, K] buffer: each step's product must come from its own slice.
        bool machineDefault = StepProduct.Managed;
        StepProduct.Managed = true;
        try
        {
            using var scope = NewDisposeScope();
            manual_seed(5);
            var steps = randn(4, 3, 7, dtype: ScalarType.Float64);
            var weight = randn(10, 7, dtype: ScalarType.Float64);
            var product = new StepProduct<double>(weight.t());
            var result = new double[3 * 10];
            for (int t = 0; t < 4; t++)
            {
                product.Multiply(steps, t, result);
                var expected = steps[t].mm(weight.t()).data<double>().ToArray();
                for (int i = 0; i < result.Length; i++) Assert.AreEqual(expected[i], result[i], 1e-12, $"step {t}, value {i}");
            }
        }
        finally { StepProduct.Managed = machineDefault; }
    }

    private static void AssertProduct<T>(ScalarType dtype, int rows, int depth, int columns, bool managed, double relativeTolerance)
        where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
    {
        bool machineDefault = StepProduct.Managed;
        StepProduct.Managed = managed;
        try
        {
            using var scope = NewDisposeScope();
            manual_seed(rows * 1000 + depth + columns);
            var steps = randn(2, rows, depth, dtype: dtype);
            var weight = randn(columns, depth, dtype: dtype); // [N, K]: the product takes its transpose, as the forward pass does
            var product = new StepProduct<T>(weight.t());
            var result = new T[rows * columns];
            product.Multiply(steps, 1, result);
            var expected = steps[1].to(ScalarType.Float64).mm(weight.to(ScalarType.Float64).t());
            var reference = expected.data<double>().ToArray();
            // Each value is a sum of `depth` products of standard normals: its rounding error grows with sqrt(depth) times the
            // size of the terms, so the tolerance is relative to sqrt(depth).
            double tolerance = relativeTolerance * Math.Sqrt(depth);
            for (int i = 0; i < reference.Length; i++)
                Assert.AreEqual(reference[i], double.CreateChecked(result[i]), tolerance, $"row {i / columns}, column {i % columns} ({(managed ? "managed" : "libtorch")})");
        }
        finally { StepProduct.Managed = machineDefault; }
    }
}
