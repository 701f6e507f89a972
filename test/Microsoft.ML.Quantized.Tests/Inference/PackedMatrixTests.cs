namespace Microsoft.ML.Quantized.Tests.Inference;

[TestClass]
public sealed class PackedMatrixTests
{
    private static readonly int[] ColumnCounts = [1, 5, 8, 9, 16, 31, 64, 67, 200];

    internal static QuantizedWeights RandomWeights(CodeLayout layout, int bits, int rows, int columns, bool perRow, Random rng)
    {
        int n = rows * columns;
        if (layout == CodeLayout.Float)
        {
            var values = new float[n];
            for (int i = 0; i < n; i++) values[i] = (float)(rng.NextDouble() * 2 - 1);
            return new QuantizedWeights(CodeLayout.Float, 32, rows, columns, false, [], [], values);
        }
        var codes = new int[n];
        for (int i = 0; i < n; i++) codes[i] = rng.Next(1 << bits);
        int groups = perRow ? rows : 1;
        var scales = new float[groups * (layout == CodeLayout.BinaryBases ? bits : 1)];
        for (int i = 0; i < scales.Length; i++) scales[i] = (float)(0.05 + rng.NextDouble());
        return new QuantizedWeights(layout, bits, rows, columns, perRow, codes, scales);
    }

    private static IEnumerable<(CodeLayout Layout, int Bits, bool PerRow)> Configurations()
    {
        yield return (CodeLayout.Float, 32, false);
        foreach (bool perRow in new[] { false, true })
        {
            yield return (CodeLayout.Sign, 1, perRow);
            for (int bits = 1; bits <= 8; bits++)
            {
                yield return (CodeLayout.SignedInteger, bits, perRow);
                yield return (CodeLayout.BinaryBases, bits, perRow);
            }
        }
    }

    private static double[] DenseReference(QuantizedWeights w, float[] x, out double[] magnitude)
    {
        var dense = w.DecodeAll();
        var y = new double[w.Rows];
        magnitude = new double[w.Rows];
        for (int r = 0; r < w.Rows; r++)
            for (int c = 0; c < w.Columns; c++)
            {
                y[r] += (double)dense[r * w.Columns + c] * x[c];
                magnitude[r] += Math.Abs((double)dense[r * w.Columns + c] * x[c]);
            }
        return y;
    }

    [TestMethod]
    public void Sign_HandComputed()
    {
        // Row 0: 0.5 * (+1 - 2 + 3) = 1; row 1: 2 * (-1 - 2 + 3) = 0.
        var w = new QuantizedWeights(CodeLayout.Sign, 1, 2, 3, true, [1, 0, 1, 0, 0, 1], [0.5f, 2f]);
        var m = PackedMatrix.FromQuantizedWeights(w);
        CollectionAssert.AreEqual(new[] { 0.5f, -0.5f, 0.5f, -2f, -2f, 2f }, m.Decode());
        var y = new float[2];
        m.MultiplyVectorScalar([1f, 2f, 3f], y);
        CollectionAssert.AreEqual(new[] { 1f, 0f }, y);
        m.MultiplyVectorSimd([1f, 2f, 3f], y);
        CollectionAssert.AreEqual(new[] { 1f, 0f }, y);
    }

    [TestMethod]
    public void SignedInteger_TwoBits_HandComputed()
    {
        // 2-bit two's complement: 0 -> 0, 1 -> 1, 2 -> -2, 3 -> -1; per-tensor scale 0.25.
        var w = new QuantizedWeights(CodeLayout.SignedInteger, 2, 1, 4, false, [0, 1, 2, 3], [0.25f]);
        var m = PackedMatrix.FromQuantizedWeights(w);
        CollectionAssert.AreEqual(new[] { 0f, 0.25f, -0.5f, -0.25f }, m.Decode());
        var y = new float[1];
        m.MultiplyVector([1f, 2f, 3f, 4f], y); // 0.25 * (0 + 2 - 6 - 4) = -2
        Assert.AreEqual(-2f, y[0]);
        // 4 columns at 2 bits = one byte per row; 20-byte header + 1 code byte + 1 scale.
        Assert.AreEqual(20 + 1 + 4, m.SizeInBytes);
    }

    [TestMethod]
    public void BinaryBases_TwoPlanes_HandComputed()
    {
        // Value = s0 * (+-1) + s1 * (+-1) with s = (1, 0.5): codes 0..3 -> -1.5, 0.5, -0.5, 1.5.
        var w = new QuantizedWeights(CodeLayout.BinaryBases, 2, 1, 4, false, [0, 1, 2, 3], [1f, 0.5f]);
        var m = PackedMatrix.FromQuantizedWeights(w);
        CollectionAssert.AreEqual(new[] { -1.5f, 0.5f, -0.5f, 1.5f }, m.Decode());
        var y = new float[1];
        m.MultiplyVectorScalar([1f, 1f, 1f, 2f], y); // -1.5 + 0.5 - 0.5 + 3 = 1.5
        Assert.AreEqual(1.5f, y[0], 1e-6f);
        m.MultiplyVectorSimd([1f, 1f, 1f, 2f], y);
        Assert.AreEqual(1.5f, y[0], 1e-6f);
    }

    [TestMethod]
    public void Decode_EqualsDecodeAll_EveryLayout()
    {
        var rng = new Random(7);
        foreach (var (layout, bits, perRow) in Configurations())
            foreach (int columns in new[] { 1, 7, 13 })
            {
                var w = RandomWeights(layout, bits, 5, columns, perRow, rng);
                var m = PackedMatrix.FromQuantizedWeights(w);
                CollectionAssert.AreEqual(w.DecodeAll(), m.Decode(), $"{layout} {bits} bits perRow={perRow} columns={columns}");
                var back = m.ToQuantizedWeights();
                CollectionAssert.AreEqual(w.DecodeAll(), back.DecodeAll());
            }
    }

    [TestMethod]
    public void MultiplyVector_ScalarAndSimd_MatchDenseReference()
    {
        var rng = new Random(42);
        foreach (var (layout, bits, perRow) in Configurations())
            foreach (int columns in ColumnCounts)
            {
                int rows = 1 + rng.Next(6);
                var w = RandomWeights(layout, bits, rows, columns, perRow, rng);
                var m = PackedMatrix.FromQuantizedWeights(w);
                var x = new float[columns];
                for (int i = 0; i < columns; i++) x[i] = (float)(rng.NextDouble() * 4 - 2);
                var expected = DenseReference(w, x, out var magnitude);
                var scalar = new float[rows];
                var simd = new float[rows];
                var auto = new float[rows];
                m.MultiplyVectorScalar(x, scalar);
                m.MultiplyVectorSimd(x, simd);
                m.MultiplyVector(x, auto);
                for (int r = 0; r < rows; r++)
                {
                    string what = $"{layout} {bits} bits perRow={perRow} {rows}x{columns} row {r}";
                    // Relative to the size of the terms summed (the result itself may cancel to ~0).
                    double tol = 1e-4 * Math.Max(1.0, magnitude[r]);
                    Assert.AreEqual(expected[r], scalar[r], tol, "scalar vs dense: " + what);
                    Assert.AreEqual(expected[r], simd[r], tol, "simd vs dense: " + what);
                    Assert.AreEqual(scalar[r], simd[r], tol, "simd vs scalar: " + what);
                    Assert.AreEqual(simd[r], auto[r], tol, "auto: " + what);
                }
            }
    }

    [TestMethod]
    public void DecodeRow_EqualsThatRowOfDecode_EveryLayout()
    {
        var rng = new Random(5);
        foreach (var (layout, bits, perRow) in Configurations())
        {
            var m = PackedMatrix.FromQuantizedWeights(RandomWeights(layout, bits, 4, 13, perRow, rng));
            var all = m.Decode();
            var row = new float[13];
            for (int r = 0; r < 4; r++)
            {
                m.DecodeRow(r, row);
                CollectionAssert.AreEqual(all.AsSpan(r * 13, 13).ToArray(), row, $"{layout} {bits} bits, per row {perRow}, row {r}");
            }
            Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => m.DecodeRow(4, row));
            Assert.ThrowsExactly<ArgumentException>(() => m.DecodeRow(0, new float[12]));
        }
    }

    [TestMethod]
    public void ScaleRows_MultipliesEachDecodedRow_EveryLayout()
    {
        var rng = new Random(6);
        float[] multipliers = [0.5f, 2f, -1f, 3f];
        foreach (var (layout, bits, perRow) in Configurations())
        {
            var w = RandomWeights(layout, bits, 4, 9, perRow, rng);
            var scaled = w.ScaleRows(multipliers);
            Assert.IsTrue(layout == CodeLayout.Float || scaled.PerRow, "scales become per row");
            var before = w.DecodeAll();
            var after = scaled.DecodeAll();
            float tolerance = 1e-6f * Math.Max(1f, after.Max(Math.Abs)); // float rounding of the scale products
            for (int i = 0; i < before.Length; i++)
                Assert.AreEqual(before[i] * multipliers[i / 9], after[i], tolerance, $"{layout} {bits} bits, per row {perRow}, weight {i}");
        }
    }

    [TestMethod]
    public void MultiplyVector_WrongLengths_Throw()
    {
        var m = PackedMatrix.FromQuantizedWeights(RandomWeights(CodeLayout.Sign, 1, 3, 4, true, new Random(1)));
        Assert.ThrowsExactly<ArgumentException>(() => m.MultiplyVector(new float[5], new float[3]));
        Assert.ThrowsExactly<ArgumentException>(() => m.MultiplyVector(new float[4], new float[2]));
    }

    [TestMethod]
    public void SizeInBytes_CountsCodesScalesAndHeader()
    {
        var rng = new Random(3);
        // 3 x 10 at 2 bits: 20 bits -> 3 bytes per row, 9 code bytes; 3 per-row scales.
        var a = PackedMatrix.FromQuantizedWeights(RandomWeights(CodeLayout.SignedInteger, 2, 3, 10, true, rng));
        Assert.AreEqual(20 + 9 + 12, a.SizeInBytes);
        // 4 x 16 BinaryBases 3 bits, per tensor: 6 bytes per row, 24 code bytes; 3 scales.
        var b = PackedMatrix.FromQuantizedWeights(RandomWeights(CodeLayout.BinaryBases, 3, 4, 16, false, rng));
        Assert.AreEqual(20 + 24 + 12, b.SizeInBytes);
        // Float 2 x 5: 40 bytes of values.
        var c = PackedMatrix.FromQuantizedWeights(RandomWeights(CodeLayout.Float, 32, 2, 5, false, rng));
        Assert.AreEqual(20 + 40, c.SizeInBytes);
    }

    [TestMethod]
    public void WriteRead_RoundTrip_EveryLayout()
    {
        var rng = new Random(11);
        foreach (var (layout, bits, perRow) in Configurations())
        {
            var w = RandomWeights(layout, bits, 4, 13, perRow, rng);
            var m = PackedMatrix.FromQuantizedWeights(w);
            var bytes = Serialize(m);
            Assert.AreEqual(m.SizeInBytes, bytes.Length, $"{layout} {bits}");
            using var reader = new BinaryReader(new MemoryStream(bytes));
            var back = PackedMatrix.Read(reader);
            Assert.AreEqual(m.Rows, back.Rows);
            Assert.AreEqual(m.Columns, back.Columns);
            Assert.AreEqual(m.Bits, back.Bits);
            Assert.AreEqual(m.Layout, back.Layout);
            Assert.AreEqual(m.PerRow, back.PerRow);
            CollectionAssert.AreEqual(w.DecodeAll(), back.Decode(), $"{layout} {bits}");
            CollectionAssert.AreEqual(bytes, Serialize(back));
        }
    }

    [TestMethod]
    public void Read_TwoMatricesFromOneStream()
    {
        var rng = new Random(5);
        var a = PackedMatrix.FromQuantizedWeights(RandomWeights(CodeLayout.Sign, 1, 3, 9, true, rng));
        var b = PackedMatrix.FromQuantizedWeights(RandomWeights(CodeLayout.Float, 32, 2, 2, false, rng));
        var stream = new MemoryStream();
        using (var writer = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true))
        {
            a.Write(writer);
            b.Write(writer);
        }
        stream.Position = 0;
        using var reader = new BinaryReader(stream);
        CollectionAssert.AreEqual(a.Decode(), PackedMatrix.Read(reader).Decode());
        CollectionAssert.AreEqual(b.Decode(), PackedMatrix.Read(reader).Decode());
    }

    [TestMethod]
    public void Read_CorruptStreams_ThrowInvalidData()
    {
        var m = PackedMatrix.FromQuantizedWeights(RandomWeights(CodeLayout.SignedInteger, 3, 5, 11, true, new Random(9)));
        var good = Serialize(m);

        var flipped = (byte[])good.Clone();
        flipped[20] ^= 0x10; // a code byte
        StringAssert.Contains(ReadError(flipped), "checksum mismatch");

        var scale = (byte[])good.Clone();
        scale[good.Length - 6] ^= 0x01; // a scale byte
        StringAssert.Contains(ReadError(scale), "checksum mismatch");

        var magic = (byte[])good.Clone();
        magic[0] = (byte)'X';
        StringAssert.Contains(ReadError(magic), "Not a packed matrix");

        var version = (byte[])good.Clone();
        version[4] = 99;
        StringAssert.Contains(ReadError(version), "version 99");

        var layout = (byte[])good.Clone();
        layout[5] = 17;
        StringAssert.Contains(ReadError(layout), "unknown code layout");

        var bits = (byte[])good.Clone();
        bits[6] = 12;
        StringAssert.Contains(ReadError(bits), "12 bits");

        var shape = (byte[])good.Clone();
        shape[11] = 0x80; // rows negative
        StringAssert.Contains(ReadError(shape), "negative shape");

        StringAssert.Contains(ReadError(good[..^1]), "truncated");
        StringAssert.Contains(ReadError(good[..10]), "truncated");
        StringAssert.Contains(ReadError([]), "truncated");
    }

    [TestMethod]
    public void FromQuantizedWeights_RejectsInconsistentInput()
    {
        Assert.ThrowsExactly<ArgumentException>(() => PackedMatrix.FromQuantizedWeights(
            new QuantizedWeights(CodeLayout.SignedInteger, 2, 2, 2, false, [0, 1, 2], [1f])));
        Assert.ThrowsExactly<ArgumentException>(() => PackedMatrix.FromQuantizedWeights(
            new QuantizedWeights(CodeLayout.SignedInteger, 2, 2, 2, true, [0, 1, 2, 3], [1f])));
        Assert.ThrowsExactly<ArgumentException>(() => PackedMatrix.FromQuantizedWeights(
            new QuantizedWeights(CodeLayout.Sign, 2, 1, 2, false, [0, 1], [1f])));
        Assert.ThrowsExactly<ArgumentException>(() => PackedMatrix.FromQuantizedWeights(
            new QuantizedWeights(CodeLayout.SignedInteger, 9, 1, 1, false, [0], [1f])));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => PackedMatrix.FromQuantizedWeights(
            new QuantizedWeights(CodeLayout.SignedInteger, 2, 1, 2, false, [0, 4], [1f])));
        Assert.ThrowsExactly<ArgumentException>(() => PackedMatrix.FromQuantizedWeights(
            new QuantizedWeights(CodeLayout.Float, 32, 1, 2, false, [], [], [1f])));
    }

    [TestMethod]
    public void IsImmutable_SourceArraysNotShared()
    {
        var w = new QuantizedWeights(CodeLayout.Sign, 1, 1, 2, false, [1, 0], [2f]);
        var m = PackedMatrix.FromQuantizedWeights(w);
        w.Scales[0] = 100f;
        w.Codes[0] = 0;
        CollectionAssert.AreEqual(new[] { 2f, -2f }, m.Decode());
    }

    internal static byte[] Serialize(PackedMatrix m)
    {
        var stream = new MemoryStream();
        using (var writer = new BinaryWriter(stream))
            m.Write(writer);
        return stream.ToArray();
    }

    private static string ReadError(byte[] bytes)
    {
        using var reader = new BinaryReader(new MemoryStream(bytes));
        var e = Assert.ThrowsExactly<InvalidDataException>(() => PackedMatrix.Read(reader));
        return e.Message;
    }
}
