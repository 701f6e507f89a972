using System.Buffers.Binary;

namespace Microsoft.ML.Quantized.Tests.Inference;

/// <summary>Base-3 storage of ternary codes (five trits per byte) and the packed matrices that use it on disk.</summary>
[TestClass]
public sealed class TritPackingTests
{
    private static readonly int[] ColumnCounts = [1, 4, 5, 6, 9, 10, 16, 31, 67, 200];

    private static int[] TernaryCodes(int n, Random rng)
    {
        var codes = new int[n];
        for (int i = 0; i < n; i++) codes[i] = rng.Next(3) switch { 0 => 3, 1 => 0, _ => 1 }; // -1, 0, +1 as 2-bit codes
        return codes;
    }

    [TestMethod]
    public void Five_trits_make_one_byte_first_trit_least_significant_and_a_short_group_pads_with_zero_values()
    {
        // [+1, -1, 0, 0, +1] -> trits 2, 0, 1, 1, 2 -> 2 + 0 + 9 + 27 + 162 = 200; then [-1, -1] -> 0 + 0 + padding 9 + 27 + 81 = 117.
        int[] codes = [1, 3, 0, 0, 1, 3, 3];
        var twoBit = BitPacking.Pack(codes, 1, 7, 2);
        CollectionAssert.AreEqual(new byte[] { 200, 117 }, TritPacking.FromTwoBit(twoBit, 1, 7));
        CollectionAssert.AreEqual(twoBit, TritPacking.ToTwoBit([200, 117], 1, 7));
    }

    [TestMethod]
    public void Ternary_rows_round_trip_for_every_row_length()
    {
        var rng = new Random(5);
        foreach (int columns in ColumnCounts)
        {
            var twoBit = BitPacking.Pack(TernaryCodes(3 * columns, rng), 3, columns, 2);
            var trits = TritPacking.FromTwoBit(twoBit, 3, columns);
            Assert.HasCount(3 * ((columns + 4) / 5), trits, $"{columns} columns");
            CollectionAssert.AreEqual(twoBit, TritPacking.ToTwoBit(trits, 3, columns), $"{columns} columns");
        }
    }

    [TestMethod]
    public void Only_codes_without_minus_two_are_ternary()
    {
        Assert.IsTrue(TritPacking.IsTernary(BitPacking.Pack([3, 0, 1, 1, 3], 1, 5, 2)));
        Assert.IsFalse(TritPacking.IsTernary(BitPacking.Pack([3, 0, 2, 1, 3], 1, 5, 2)));
        Assert.ThrowsExactly<ArgumentException>(() => TritPacking.FromTwoBit(BitPacking.Pack([2], 1, 1, 2), 1, 1));
    }

    [TestMethod]
    public void Bytes_that_are_not_five_trits_or_padding_that_is_not_zero_are_corrupt()
    {
        StringAssert.Contains(Assert.ThrowsExactly<InvalidDataException>(() => TritPacking.ToTwoBit([243], 1, 5)).Message, "243");
        // One column: trits 2..5 are padding and must be 1 (value 0); 0 + 3 * 0 + ... is not.
        StringAssert.Contains(Assert.ThrowsExactly<InvalidDataException>(() => TritPacking.ToTwoBit([0], 1, 1)).Message, "padding");
    }

    [TestMethod]
    public void A_ternary_matrix_is_stored_as_trits_and_reads_back_to_the_same_products()
    {
        var rng = new Random(9);
        foreach (bool perRow in new[] { false, true })
            foreach (int columns in ColumnCounts)
            {
                int rows = 6;
                var scales = Enumerable.Range(0, perRow ? rows : 1).Select(_ => (float)(0.1 + rng.NextDouble())).ToArray();
                var m = PackedMatrix.FromQuantizedWeights(new QuantizedWeights(CodeLayout.SignedInteger, 2, rows, columns, perRow, TernaryCodes(rows * columns, rng), scales));
                Assert.IsTrue(m.StoredAsTrits);
                Assert.AreEqual(PackedMatrix.HeaderBytes + rows * ((columns + 4) / 5) + 4L * scales.Length, m.SizeInBytes, $"{columns} columns");
                var bytes = PackedMatrixTests.Serialize(m);
                Assert.HasCount((int)m.SizeInBytes, bytes);
                Assert.AreEqual(2, bytes[4], "format version 2");
                Assert.AreEqual((perRow ? 1 : 0) | 2, bytes[7], "flags: per-row, trits");
                var back = PackedMatrix.Read(new BinaryReader(new MemoryStream(bytes)));
                CollectionAssert.AreEqual(m.PackedCodes.ToArray(), back.PackedCodes.ToArray());
                var x = Enumerable.Range(0, columns).Select(_ => (float)rng.NextDouble()).ToArray();
                float[] y = new float[rows], yBack = new float[rows];
                m.MultiplyVector(x, y);
                back.MultiplyVector(x, yBack);
                CollectionAssert.AreEqual(y, yBack);
            }
    }

    [TestMethod]
    public void Two_bit_integers_with_minus_two_keep_two_bits_and_version_one_files_still_read()
    {
        var m = PackedMatrix.FromQuantizedWeights(new QuantizedWeights(CodeLayout.SignedInteger, 2, 2, 10, false, [2, 0, 1, 3, 0, 0, 1, 1, 3, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], [0.5f]));
        Assert.IsFalse(m.StoredAsTrits);
        Assert.AreEqual(PackedMatrix.HeaderBytes + 2 * 3 + 4, m.SizeInBytes);
        // The same matrix as the first format wrote it: version 1, no trit flag, checksum over the rest.
        var bytes = PackedMatrixTests.Serialize(m);
        bytes[4] = 1;
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(bytes.Length - 4), Crc32.Finish(Crc32.Update(Crc32.Initial, bytes.AsSpan(0, bytes.Length - 4))));
        var back = PackedMatrix.Read(new BinaryReader(new MemoryStream(bytes)));
        CollectionAssert.AreEqual(m.PackedCodes.ToArray(), back.PackedCodes.ToArray());
        // A version-1 header may not claim trits.
        bytes[7] = 2;
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(bytes.Length - 4), Crc32.Finish(Crc32.Update(Crc32.Initial, bytes.AsSpan(0, bytes.Length - 4))));
        StringAssert.Contains(Assert.ThrowsExactly<InvalidDataException>(() => PackedMatrix.Read(new BinaryReader(new MemoryStream(bytes)))).Message, "unknown flags");
    }
}
