using static Microsoft.ML.Quantized.Tests.Inference.EngineTestModels;

namespace Microsoft.ML.Quantized.Tests.Inference;

/// <summary>
/// The SIMD kernels against the scalar reference kernels on random data of odd sizes (vector tails of every length),
/// and whole scorers run with each. Transcendentals and fused multiply-adds are not bit-identical across the two, so
/// agreement is to float rounding: max |simd - reference| &lt;= 2e-6 * max(1, max |reference|).
/// </summary>
[TestClass]
public sealed class ScoringKernelsTests
{
    private const double Tolerance = 2e-6;
    private static readonly ScoringKernels Reference = ScoringKernels.Reference, Simd = ScoringKernels.Simd;

    [TestMethod]
    [DataRow(1)]
    [DataRow(3)]
    [DataRow(7)]
    [DataRow(8)]
    [DataRow(9)]
    [DataRow(17)]
    [DataRow(33)]
    [DataRow(100)]
    [DataRow(257)]
    public void ElementwiseAndReductions_SimdMatchesReference(int n)
    {
        var rng = new Random(n);
        var x = Random(rng, n, 4);
        var a = Random(rng, n, 1);
        var b = Random(rng, n, 1);

        AssertClose(Apply(x, v => Reference.Add(v, a)), Apply(x, v => Simd.Add(v, a)), "Add");
        AssertClose(Apply(x, v => Reference.MultiplyAdd(v, a, b)), Apply(x, v => Simd.MultiplyAdd(v, a, b)), "MultiplyAdd");
        foreach (float slope in new[] { 1f, 0.6f, 1.5f })
        {
            AssertClose(Apply(x, v => Reference.Sigmoid(v, slope)), Apply(x, v => Simd.Sigmoid(v, slope)), $"Sigmoid slope {slope}");
            AssertClose(Apply(x, v => Reference.Tanh(v, slope)), Apply(x, v => Simd.Tanh(v, slope)), $"Tanh slope {slope}");
        }
        if (n > 1) AssertClose(Apply(x, v => Reference.LayerNorm(v, a, b, 1e-5f)), Apply(x, v => Simd.LayerNorm(v, a, b, 1e-5f)), "LayerNorm");
        AssertClose([Reference.LogSumExp(x, new float[n])], [Simd.LogSumExp(x, new float[n])], "LogSumExp");
        var (p, q) = (new float[n], new float[n]);
        Reference.Softmax(x, p);
        Simd.Softmax(x, q);
        AssertClose(p, q, "Softmax");
        Assert.AreEqual(1.0, q.Sum(v => (double)v), 1e-5, "Softmax sums to 1");
    }

    [TestMethod]
    public void LayerNorm_HandComputed()
    {
        // x = [1, 2, 3, 4]: mean 2.5, biased variance 1.25; gain 2 and bias 1 on every feature.
        float[] expected = [.. new[] { -1.5, -0.5, 0.5, 1.5 }.Select(d => (float)(2 * d / Math.Sqrt(1.25) + 1))];
        foreach (var kernels in new[] { Reference, Simd })
        {
            float[] x = [1, 2, 3, 4];
            kernels.LayerNorm(x, [2, 2, 2, 2], [1, 1, 1, 1], 0f);
            AssertClose(expected, x, kernels.GetType().Name);
        }
    }

    [TestMethod]
    public void MultiplyVector_EveryLayoutAndOddSize_SimdMatchesReference()
    {
        var rng = new Random(3);
        foreach (var (layout, bits) in new[] { (CodeLayout.Float, 32), (CodeLayout.Sign, 1), (CodeLayout.SignedInteger, 2), (CodeLayout.SignedInteger, 3), (CodeLayout.SignedInteger, 8), (CodeLayout.BinaryBases, 3) })
            foreach (int columns in new[] { 1, 7, 9, 23, 65 })
            {
                var matrix = PackedMatrix.FromQuantizedWeights(PackedMatrixTests.RandomWeights(layout, bits, 13, columns, perRow: true, rng));
                var x = Random(rng, columns, 1);
                var (y1, y2) = (new float[13], new float[13]);
                Reference.MultiplyVector(matrix, x, y1);
                Simd.MultiplyVector(matrix, x, y2);
                AssertClose(y1, y2, $"{layout} {bits} bits, {columns} columns");
            }
    }

    [TestMethod]
    [DataRow(RecurrentCellKind.Lstm, RecurrentNormalization.Layer, "twn")]
    [DataRow(RecurrentCellKind.Gru, RecurrentNormalization.BatchPerStep, "alt2-row")]
    [DataRow(RecurrentCellKind.Lstm, RecurrentNormalization.Weight, "uniform3")]
    public void Scorers_SimdMatchesReference(RecurrentCellKind cell, RecurrentNormalization normalization, string weights)
    {
        using var network = LanguageModel(Recurrent(cell, normalization, weights, mixedSlopes: true, layers: 2), seed: 9);
        var packed = PackedModelEncoder.Encode(network);
        var (reference, simd) = (new LanguageModelScorer(packed, Reference), new LanguageModelScorer(packed, Simd));
        var (l1, l2) = (new float[VocabularySize], new float[VocabularySize]);
        foreach (int id in Ids(2, 12))
        {
            reference.Step(id, l1);
            simd.Step(id, l2);
            double error = RelativeError(l1, l2, "logits");
            Assert.IsTrue(error <= 1e-5, $"step {reference.Position}: logits differ by {error:E2}");
        }
    }

    private static float[] Random(Random rng, int n, double scale)
        => Enumerable.Range(0, n).Select(_ => (float)((rng.NextDouble() * 2 - 1) * scale)).ToArray();

    private static float[] Apply(float[] x, Action<float[]> kernel)
    {
        var copy = (float[])x.Clone();
        kernel(copy);
        return copy;
    }

    private static void AssertClose(float[] expected, float[] actual, string what)
    {
        Assert.AreEqual(expected.Length, actual.Length, what);
        double scale = Math.Max(1, expected.Max(v => Math.Abs((double)v)));
        for (int i = 0; i < expected.Length; i++)
            Assert.IsTrue(Math.Abs((double)actual[i] - expected[i]) <= Tolerance * scale,
                $"{what}[{i}] of {expected.Length}: SIMD {actual[i]:R} vs reference {expected[i]:R}");
    }
}
