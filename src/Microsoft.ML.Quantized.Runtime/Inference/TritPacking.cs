namespace Microsoft.ML.Quantized;

/// <summary>
/// Base-3 storage of ternary codes: five trits per byte (3^5 = 243 &lt;= 256), 1.6 bits per weight instead of 2.
/// A ternary code is a 2-bit two's-complement code of -1, 0 or +1 (<see cref="BitPacking"/> form: 3, 0, 1); its trit
/// is the value + 1 (0, 1, 2). Within a row, trits <c>5b .. 5b+4</c> make byte <c>b</c> as
/// <c>t0 + 3 t1 + 9 t2 + 27 t3 + 81 t4</c> (the first trit least significant); a short last group is padded with
/// trit 1 (value 0), so every row starts byte-aligned at <c>row * BytesPerRow(columns)</c>.
/// Example, values [+1, -1, 0, 0, +1]: trits 2, 0, 1, 1, 2 give byte 2 + 0 + 9 + 27 + 162 = 200.
/// Used on disk only: <see cref="PackedMatrix"/> keeps the 2-bit form in memory, which its kernels read directly.
/// </summary>
internal static class TritPacking
{
    private const int TritsPerByte = 5;

    /// <summary>Bytes one row of <paramref name="columns"/> trits takes.</summary>
    public static int BytesPerRow(int columns) => checked((columns + TritsPerByte - 1) / TritsPerByte);

    /// <summary>Whether every code of a 2-bit packed matrix is -1, 0 or +1 (no -2), so it can be stored as trits.</summary>
    public static bool IsTernary(ReadOnlySpan<byte> twoBitCodes)
    {
        // A field of 0b10 is the code -2; padding fields are 0.
        foreach (byte b in twoBitCodes)
            if (((b & 0xAA) & ~((b & 0x55) << 1)) != 0) return false;
        return true;
    }

    /// <summary>Converts 2-bit packed ternary rows (<see cref="BitPacking"/> form) to trit rows.</summary>
    /// <exception cref="ArgumentException">A code is -2.</exception>
    public static byte[] FromTwoBit(ReadOnlySpan<byte> twoBitCodes, int rows, int columns)
    {
        int source = BitPacking.BytesPerRow(columns, 2), stride = BytesPerRow(columns);
        var trits = new byte[(long)rows * stride];
        for (int r = 0; r < rows; r++)
        {
            var row = twoBitCodes.Slice(r * source, source);
            for (int b = 0; b < stride; b++)
            {
                int value = 0;
                for (int t = TritsPerByte - 1; t >= 0; t--) // Horner's rule, the first trit least significant
                {
                    int column = b * TritsPerByte + t, trit = 1; // padding: value 0
                    if (column < columns)
                    {
                        int code = BitPacking.Get(row, 2, column);
                        if (code == 2) throw new ArgumentException("Code -2 is not ternary; store these codes as 2-bit integers.", nameof(twoBitCodes));
                        trit = code == 3 ? 0 : code + 1;
                    }
                    value = value * 3 + trit;
                }
                trits[(long)r * stride + b] = (byte)value;
            }
        }
        return trits;
    }

    /// <summary>Converts trit rows back to 2-bit packed codes.</summary>
    /// <exception cref="InvalidDataException">A byte is 243 or more, or a padding trit is not the value 0.</exception>
    public static byte[] ToTwoBit(ReadOnlySpan<byte> trits, int rows, int columns)
    {
        int stride = BytesPerRow(columns), target = BitPacking.BytesPerRow(columns, 2);
        var codes = new byte[(long)rows * target];
        var row = new int[columns];
        for (int r = 0; r < rows; r++)
        {
            for (int b = 0; b < stride; b++)
            {
                int value = trits[r * stride + b];
                if (value >= 243) throw new InvalidDataException($"Corrupt trit-packed codes: byte {value} in row {r} is not five trits (at most 242).");
                for (int t = 0; t < TritsPerByte; t++, value /= 3)
                {
                    int trit = value % 3, column = b * TritsPerByte + t;
                    if (column >= columns)
                    {
                        if (trit != 1) throw new InvalidDataException($"Corrupt trit-packed codes: padding in row {r} is not zero.");
                        continue;
                    }
                    row[column] = trit == 0 ? 3 : trit - 1;
                }
            }
            BitPacking.PackRow(row, 2, codes.AsSpan(r * target, target));
        }
        return codes;
    }
}
