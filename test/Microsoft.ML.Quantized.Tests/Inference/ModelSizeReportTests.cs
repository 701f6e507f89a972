namespace Microsoft.ML.Quantized.Tests.Inference;

[TestClass]
public sealed class ModelSizeReportTests
{
    private static PackedMatrix Pack(CodeLayout layout, int bits, int rows, int columns, bool perRow) =>
        PackedMatrix.FromQuantizedWeights(PackedMatrixTests.RandomWeights(layout, bits, rows, columns, perRow, new Random(1)));

    [TestMethod]
    public void HandComputedNumbers()
    {
        // A: Sign 100 x 64 per row: 8 bytes/row -> 800 code bytes + 100 scales (400) = 1200 payload, 1220 with header.
        // B: SignedInteger 2 bits 50 x 30 per tensor: 60 bits -> 8 bytes/row -> 400 + 4 = 404 payload, 424 with header.
        var a = Pack(CodeLayout.Sign, 1, 100, 64, true);
        var b = Pack(CodeLayout.SignedInteger, 2, 50, 30, false);
        Assert.AreEqual(1220, a.SizeInBytes);
        Assert.AreEqual(424, b.SizeInBytes);

        var report = ModelSizeReport.From([a, b], floatParameterCount: 1000);
        Assert.AreEqual(7900, report.QuantizedParameterCount);
        Assert.AreEqual(1000, report.FloatParameterCount);
        Assert.AreEqual(8900, report.ParameterCount);
        Assert.AreEqual(8.0 * (1200 + 404) / 7900, report.BitsPerQuantizedWeight, 1e-12); // 1.6243
        Assert.AreEqual(1220 + 424 + 4000, report.PackedBytes);
        Assert.AreEqual(35600, report.Float32Bytes);
        Assert.AreEqual(35600.0 / 5644, report.CompressionRatio, 1e-12); // 6.3075
        Assert.AreEqual("8.90 K params, 1.62 bits/weight (quantized part), 5.6 KB packed vs 35.6 KB float32 (6.3x)", report.ToString());
    }

    [TestMethod]
    public void FloatLayoutMatrix_CountsAsFloatParameters()
    {
        var q = Pack(CodeLayout.BinaryBases, 2, 10, 16, true); // 4 bytes/row -> 40 + 20 scales (80) = 120 payload
        var f = Pack(CodeLayout.Float, 32, 10, 10, false);     // 400 payload
        var report = ModelSizeReport.From([q, f], floatParameterCount: 0);
        Assert.AreEqual(160, report.QuantizedParameterCount);
        Assert.AreEqual(100, report.FloatParameterCount);
        Assert.AreEqual(8.0 * 120 / 160, report.BitsPerQuantizedWeight, 1e-12); // 6 bits/weight: scales dominate here
        Assert.AreEqual(140 + 420, report.PackedBytes);
        Assert.AreEqual(4 * 260, report.Float32Bytes);
    }

    [TestMethod]
    public void LargeModel_SummaryUsesMegaUnits()
    {
        // 2 bits, 1000 x 1200 per row: 300 bytes/row -> 300,000 + 4,000 = 304,000 payload; 20 header.
        var m = Pack(CodeLayout.SignedInteger, 2, 1000, 1200, true);
        var report = ModelSizeReport.From([m], floatParameterCount: 30_000);
        Assert.AreEqual(1_230_000, report.ParameterCount);
        Assert.AreEqual(304_020 + 120_000, report.PackedBytes);
        Assert.AreEqual(4_920_000, report.Float32Bytes);
        Assert.AreEqual("1.23 M params, 2.03 bits/weight (quantized part), 424.0 KB packed vs 4.9 MB float32 (11.6x)", report.ToString());
    }

    [TestMethod]
    public void NothingQuantized()
    {
        var report = ModelSizeReport.From([], floatParameterCount: 10);
        Assert.AreEqual(0, report.BitsPerQuantizedWeight);
        Assert.AreEqual(1.0, report.CompressionRatio);
        Assert.AreEqual("10 params, no quantized weights, 40 B packed vs 40 B float32 (1.0x)", report.ToString());
    }
}
