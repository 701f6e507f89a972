namespace Microsoft.ML.Quantized;

/// <summary>
/// Packs unsigned codes of 1..8 bits into bytes and back.
/// <para>
/// Bit order is little-endian: within one row, code <c>j</c> occupies stream bits
/// <c>[j * bits, (j + 1) * bits)</c>, its lowest bit first, and stream bit <c>k</c> is bit <c>k % 8</c>
/// (1 = least significant) of byte <c>k / 8</c>. A code may straddle two bytes (3, 5, 6, 7 bits).
/// Each row is padded with zero bits to a whole number of bytes, so every row starts byte-aligned
/// at <c>row * BytesPerRow(columns, bits)</c>.
/// </para>
/// Example, 3 bits, codes [5, 3, 7]: stream 101 110 111 (lowest bit first) gives byte 0 = 0b11_011_101 = 0xDD,
/// byte 1 = 0b0000000_1 = 0x01.
/// </summary>
internal static class BitPacking
{
    /// <summary>Bytes one packed row of <paramref name="columns"/> codes takes (rounded up to a byte).</summary>
    public static int BytesPerRow(int columns, int bits)
    {
        ValidateBits(bits);
        if (columns < 0) throw new ArgumentOutOfRangeException(nameof(columns), columns, "Columns must be >= 0.");
        return checked((int)(((long)columns * bits + 7) / 8));
    }

    /// <summary>Total bytes of a packed <paramref name="rows"/> x <paramref name="columns"/> matrix.</summary>
    public static long PackedLength(int rows, int columns, int bits)
    {
        if (rows < 0) throw new ArgumentOutOfRangeException(nameof(rows), rows, "Rows must be >= 0.");
        return (long)rows * BytesPerRow(columns, bits);
    }

    /// <summary>
    /// Packs a row-major <paramref name="rows"/> x <paramref name="columns"/> array of codes, each in
    /// <c>[0, 2^bits)</c>, into a new byte array with byte-aligned rows.
    /// </summary>
    /// <exception cref="ArgumentException">Wrong length, bad width, or a code outside <c>[0, 2^bits)</c>.</exception>
    public static byte[] Pack(ReadOnlySpan<int> codes, int rows, int columns, int bits)
    {
        int stride = BytesPerRow(columns, bits);
        if (rows < 0) throw new ArgumentOutOfRangeException(nameof(rows), rows, "Rows must be >= 0.");
        if ((long)rows * columns != codes.Length)
            throw new ArgumentException($"Expected rows * columns = {(long)rows * columns} codes, got {codes.Length}.", nameof(codes));
        var packed = new byte[checked(rows * stride)];
        for (int r = 0; r < rows; r++)
            PackRow(codes.Slice(r * columns, columns), bits, packed.AsSpan(r * stride, stride));
        return packed;
    }

    /// <summary>Packs one row of codes into <paramref name="destination"/> (at least BytesPerRow bytes; the padding bits are zeroed).</summary>
    public static void PackRow(ReadOnlySpan<int> codes, int bits, Span<byte> destination)
    {
        int stride = BytesPerRow(codes.Length, bits);
        if (destination.Length < stride)
            throw new ArgumentException($"Destination holds {destination.Length} bytes; {stride} needed.", nameof(destination));
        int limit = 1 << bits;
        ulong acc = 0;
        int filled = 0, o = 0;
        for (int j = 0; j < codes.Length; j++)
        {
            int c = codes[j];
            if ((uint)c >= (uint)limit)
                throw new ArgumentOutOfRangeException(nameof(codes), c, $"Code at index {j} does not fit in {bits} bit(s): expected 0..{limit - 1}.");
            acc |= (ulong)c << filled;
            filled += bits;
            while (filled >= 8)
            {
                destination[o++] = (byte)acc;
                acc >>= 8;
                filled -= 8;
            }
        }
        if (filled > 0) destination[o++] = (byte)acc;
    }

    /// <summary>Unpacks a matrix packed by <see cref="Pack"/> into a new row-major code array.</summary>
    public static int[] Unpack(ReadOnlySpan<byte> packed, int rows, int columns, int bits)
    {
        int stride = BytesPerRow(columns, bits);
        if (rows < 0) throw new ArgumentOutOfRangeException(nameof(rows), rows, "Rows must be >= 0.");
        if ((long)rows * stride != packed.Length)
            throw new ArgumentException($"Expected {(long)rows * stride} packed bytes for {rows} x {columns} at {bits} bit(s), got {packed.Length}.", nameof(packed));
        var codes = new int[checked(rows * columns)];
        for (int r = 0; r < rows; r++)
            UnpackRow(packed.Slice(r * stride, stride), bits, codes.AsSpan(r * columns, columns));
        return codes;
    }

    /// <summary>
    /// Unpacks codes <c>[start, start + destination.Length)</c> of one packed row into <paramref name="destination"/>.
    /// </summary>
    public static void UnpackRow(ReadOnlySpan<byte> row, int bits, Span<int> destination, int start = 0)
    {
        ValidateBits(bits);
        if (start < 0) throw new ArgumentOutOfRangeException(nameof(start), start, "Start must be >= 0.");
        long endBit = (long)(start + destination.Length) * bits;
        if (endBit > (long)row.Length * 8)
            throw new ArgumentException($"Row holds {row.Length} bytes; codes up to {start + destination.Length} at {bits} bit(s) need {(endBit + 7) / 8}.", nameof(row));
        int n = destination.Length;
        switch (bits)
        {
            case 8:
                for (int j = 0; j < n; j++) destination[j] = row[start + j];
                return;
            case 4 when (start & 1) == 0:
            {
                int b = start >> 1, j = 0;
                for (; j + 1 < n; j += 2, b++)
                {
                    int v = row[b];
                    destination[j] = v & 0xF;
                    destination[j + 1] = v >> 4;
                }
                if (j < n) destination[j] = row[b] & 0xF;
                return;
            }
        }
        int mask = (1 << bits) - 1;
        long bit = (long)start * bits;
        int byteIndex = (int)(bit >> 3);
        int shift = (int)(bit & 7);
        ulong acc = 0;
        int have = 0;
        // Prime the accumulator with the partial first byte.
        if (n > 0)
        {
            acc = (ulong)row[byteIndex++] >> shift;
            have = 8 - shift;
        }
        for (int j = 0; j < n; j++)
        {
            while (have < bits)
            {
                acc |= (ulong)row[byteIndex++] << have;
                have += 8;
            }
            destination[j] = (int)acc & mask;
            acc >>= bits;
            have -= bits;
        }
    }

    /// <summary>Reads the single code at <paramref name="index"/> of a packed row.</summary>
    public static int Get(ReadOnlySpan<byte> row, int bits, int index)
    {
        long bit = (long)index * bits;
        int b = (int)(bit >> 3), shift = (int)(bit & 7);
        int word = row[b] | (shift + bits > 8 ? row[b + 1] << 8 : 0);
        return (word >> shift) & ((1 << bits) - 1);
    }

    private static void ValidateBits(int bits)
    {
        if (bits is < 1 or > 8)
            throw new ArgumentOutOfRangeException(nameof(bits), bits, "Bit width must be 1..8.");
    }
}
