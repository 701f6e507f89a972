namespace Microsoft.ML.Quantized.Tests.Inference;

[TestClass]
public sealed class BitPackingTests
{
    [TestMethod]
    public void OneBit_LowestBitFirst_RowPaddedToByte()
    {
        // c0..c7 -> bits 0..7 of byte 0: 1,0,1,1,0,0,0,1 = 0b1000_1101; c8 = 1 -> byte 1 bit 0.
        int[] codes = [1, 0, 1, 1, 0, 0, 0, 1, 1, 0];
        CollectionAssert.AreEqual(new byte[] { 0x8D, 0x01 }, BitPacking.Pack(codes, 1, 10, 1));
    }

    [TestMethod]
    public void TwoBits_HandComputed()
    {
        // 3 | 0 << 2 | 1 << 4 | 2 << 6 = 0x93; then 2.
        int[] codes = [3, 0, 1, 2, 2];
        CollectionAssert.AreEqual(new byte[] { 0x93, 0x02 }, BitPacking.Pack(codes, 1, 5, 2));
    }

    [TestMethod]
    public void ThreeBits_CodesStraddleBytes_RowsStartAligned()
    {
        // Row 0: 5 | 3 << 3 | 7 << 6 = 0x1DD -> DD 01. Row 1: 1 | 2 << 3 | 4 << 6 = 0x111 -> 11 01.
        int[] codes = [5, 3, 7, 1, 2, 4];
        var packed = BitPacking.Pack(codes, 2, 3, 3);
        CollectionAssert.AreEqual(new byte[] { 0xDD, 0x01, 0x11, 0x01 }, packed);
        Assert.AreEqual(2, BitPacking.BytesPerRow(3, 3));
        CollectionAssert.AreEqual(codes, BitPacking.Unpack(packed, 2, 3, 3));
    }

    [TestMethod]
    public void FourBits_LowNibbleFirst()
    {
        int[] codes = [0xA, 0x3, 0xF];
        CollectionAssert.AreEqual(new byte[] { 0x3A, 0x0F }, BitPacking.Pack(codes, 1, 3, 4));
    }

    [TestMethod]
    public void RandomRoundTrip_EveryWidth_OddRowLengths()
    {
        var rng = new Random(1234);
        foreach (int bits in Enumerable.Range(1, 8))
        {
            foreach (int columns in new[] { 1, 3, 7, 9, 13, 33, 65, 127 })
            {
                int rows = 1 + rng.Next(5);
                var codes = new int[rows * columns];
                for (int i = 0; i < codes.Length; i++) codes[i] = rng.Next(1 << bits);
                var packed = BitPacking.Pack(codes, rows, columns, bits);
                int stride = (columns * bits + 7) / 8;
                Assert.AreEqual(rows * stride, packed.Length, $"bits {bits}, columns {columns}");
                CollectionAssert.AreEqual(codes, BitPacking.Unpack(packed, rows, columns, bits), $"bits {bits}, columns {columns}");

                for (int r = 0; r < rows; r++)
                {
                    var row = packed.AsSpan(r * stride, stride);
                    // Padding bits past the last code are zero.
                    int usedBits = columns * bits;
                    if (usedBits % 8 != 0) Assert.AreEqual(0, row[^1] >> (usedBits % 8), "padding must be zero");
                    for (int c = 0; c < columns; c++)
                        Assert.AreEqual(codes[r * columns + c], BitPacking.Get(row, bits, c));
                    // Partial unpack from an arbitrary start.
                    int start = rng.Next(columns);
                    var part = new int[columns - start];
                    BitPacking.UnpackRow(row, bits, part, start);
                    CollectionAssert.AreEqual(codes.AsSpan(r * columns + start, columns - start).ToArray(), part);
                }
            }
        }
    }

    [TestMethod]
    public void CodeOutOfRange_Throws()
    {
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => BitPacking.Pack([0, 4], 1, 2, 2));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => BitPacking.Pack([-1], 1, 1, 3));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => BitPacking.Pack([0], 1, 1, 9));
        Assert.ThrowsExactly<ArgumentException>(() => BitPacking.Pack([0, 1, 1], 1, 2, 2));
        Assert.ThrowsExactly<ArgumentException>(() => BitPacking.Unpack(new byte[3], 1, 5, 2));
    }

    [TestMethod]
    public void EmptyMatrix_PacksToNothing()
    {
        Assert.AreEqual(0, BitPacking.Pack([], 0, 5, 3).Length);
        Assert.AreEqual(0, BitPacking.Pack([], 4, 0, 3).Length);
        Assert.AreEqual(0, BitPacking.Unpack([], 4, 0, 3).Length);
    }
}
