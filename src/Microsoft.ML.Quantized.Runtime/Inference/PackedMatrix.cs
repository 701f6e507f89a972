using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Microsoft.ML.Quantized;

/// <summary>
/// An immutable, bit-packed 2-D weight matrix built from <see cref="QuantizedWeights"/>: codes packed with
/// <see cref="BitPacking"/> (rows byte-aligned), scales kept as float32, and, for <see cref="CodeLayout.Float"/>,
/// the float32 values themselves. <see cref="MultiplyVector"/> computes <c>y = W x</c> straight from the packed
/// codes without decoding the matrix.
/// <para>
/// Serialized form (<see cref="Write"/>, all little-endian), <see cref="HeaderBytes"/> = 20 bytes of fixed overhead:
/// <list type="table">
/// <item><term>0..3</term><description>magic, ASCII <c>QPKM</c></description></item>
/// <item><term>4</term><description>format version (<see cref="FormatVersion"/>)</description></item>
/// <item><term>5</term><description><see cref="CodeLayout"/> as a byte</description></item>
/// <item><term>6</term><description>bits per code (1..8; 32 for <see cref="CodeLayout.Float"/>)</description></item>
/// <item><term>7</term><description>flags: bit 0 = per-row scales; bit 1 (version 2) = codes stored as trits
/// (<see cref="TritPacking"/>: 2-bit signed-integer matrices whose codes are all -1, 0 or +1); other bits zero</description></item>
/// <item><term>8..15</term><description>rows, columns (int32 each)</description></item>
/// <item><term>payload</term><description>packed codes (rows * <see cref="RowStride"/> bytes, or rows *
/// <c>TritPacking.BytesPerRow(columns)</c> as trits), then the scales
/// (float32; <c>groups * (Bits for BinaryBases, else 1)</c> of them, groups = rows when per-row, else 1), then for
/// the Float layout rows * columns float32 values</description></item>
/// <item><term>last 4</term><description>CRC-32 (IEEE) of everything before it</description></item>
/// </list>
/// <see cref="SizeInBytes"/> is exactly the length of that serialized form.
/// </para>
/// </summary>
internal sealed class PackedMatrix
{
    /// <summary>Fixed bytes per matrix besides codes, scales and float values: a 16-byte header and a 4-byte checksum.</summary>
    public const int HeaderBytes = 20;

    /// <summary>Version of the serialized form written by <see cref="Write"/>: 2 added trit-packed ternary codes; 1 is still read.</summary>
    public const byte FormatVersion = 2;

    private const byte PerRowFlag = 1, TritFlag = 2;

    private static ReadOnlySpan<byte> MagicBytes => "QPKM"u8;

    private readonly byte[] _codes;
    private readonly float[] _scales;
    private readonly float[]? _values;

    private PackedMatrix(CodeLayout layout, int bits, int rows, int columns, bool perRow, byte[] codes, float[] scales, float[]? values)
    {
        Layout = layout;
        Bits = bits;
        Rows = rows;
        Columns = columns;
        PerRow = perRow;
        RowStride = layout == CodeLayout.Float ? 0 : BitPacking.BytesPerRow(columns, bits);
        StoredAsTrits = layout == CodeLayout.SignedInteger && bits == 2 && TritPacking.IsTernary(codes);
        _codes = codes;
        _scales = scales;
        _values = values;
    }

    /// <summary>Number of rows (outputs of <see cref="MultiplyVector"/>).</summary>
    public int Rows { get; }

    /// <summary>Number of columns (inputs of <see cref="MultiplyVector"/>).</summary>
    public int Columns { get; }

    /// <summary>Bits per stored code: 1..8, or 32 for <see cref="CodeLayout.Float"/>.</summary>
    public int Bits { get; }

    /// <summary>How codes map to values.</summary>
    public CodeLayout Layout { get; }

    /// <summary>True when each row has its own scale(s); false for one scale (set) for the whole matrix.</summary>
    public bool PerRow { get; }

    /// <summary>Bytes per packed row of codes (0 for <see cref="CodeLayout.Float"/>).</summary>
    public int RowStride { get; }

    /// <summary>Number of weights, rows * columns.</summary>
    public long WeightCount => (long)Rows * Columns;

    /// <summary>Number of stored float32 scales.</summary>
    public int ScaleCount => _scales.Length;

    /// <summary>
    /// Whether <see cref="Write"/> stores the codes in base 3 (five per byte, <see cref="TritPacking"/>): a 2-bit
    /// signed-integer matrix whose codes are all -1, 0 or +1 (ternary quantizers). In memory they stay 2-bit.
    /// </summary>
    public bool StoredAsTrits { get; }

    /// <summary>Bytes of packed codes as stored by <see cref="Write"/> (trits for <see cref="StoredAsTrits"/>), row padding included.</summary>
    public long CodeBytes => StoredAsTrits ? (long)Rows * TritPacking.BytesPerRow(Columns) : _codes.Length;

    /// <summary>Bytes of the tensor itself as stored: codes (<see cref="CodeBytes"/>) + 4 per scale + 4 per float value (no header).</summary>
    public long PayloadBytes => CodeBytes + 4L * _scales.Length + 4L * (_values?.Length ?? 0);

    /// <summary>Total storage: <see cref="HeaderBytes"/> + <see cref="PayloadBytes"/>, the exact length <see cref="Write"/> produces.</summary>
    public long SizeInBytes => HeaderBytes + PayloadBytes;

    /// <summary>The packed codes, rows byte-aligned (empty for <see cref="CodeLayout.Float"/>).</summary>
    public ReadOnlySpan<byte> PackedCodes => _codes;

    /// <summary>The scales, group-major (for BinaryBases: group g, plane b at <c>g * Bits + b</c>).</summary>
    public ReadOnlySpan<float> Scales => _scales;

    /// <summary>Packs quantized weights. Scales and float values are copied; the result shares nothing with <paramref name="weights"/>.</summary>
    /// <exception cref="ArgumentException">The weights are inconsistent (lengths, bit width, codes out of range).</exception>
    public static PackedMatrix FromQuantizedWeights(QuantizedWeights weights)
    {
        ArgumentNullException.ThrowIfNull(weights);
        if (weights.Rows < 0 || weights.Columns < 0)
            throw new ArgumentException($"Rows and columns must be >= 0, got {weights.Rows} x {weights.Columns}.", nameof(weights));
        long count = (long)weights.Rows * weights.Columns;
        if (weights.Layout == CodeLayout.Float)
        {
            if (weights.FloatValues is null || weights.FloatValues.Length != count)
                throw new ArgumentException($"Float layout needs FloatValues of length {count}, got {weights.FloatValues?.Length.ToString() ?? "null"}.", nameof(weights));
            return new PackedMatrix(CodeLayout.Float, 32, weights.Rows, weights.Columns, false, [], [], (float[])weights.FloatValues.Clone());
        }
        ValidateBits(weights.Layout, weights.Bits);
        if (weights.Codes is null || weights.Codes.Length != count)
            throw new ArgumentException($"Expected {count} codes for {weights.Rows} x {weights.Columns}, got {weights.Codes?.Length.ToString() ?? "null"}.", nameof(weights));
        int scaleCount = weights.Groups * weights.ScalesPerGroup;
        if (weights.Scales is null || weights.Scales.Length != scaleCount)
            throw new ArgumentException($"Expected {scaleCount} scales ({weights.Layout}, {(weights.PerRow ? "per row" : "per tensor")}), got {weights.Scales?.Length.ToString() ?? "null"}.", nameof(weights));
        byte[] codes = BitPacking.Pack(weights.Codes, weights.Rows, weights.Columns, weights.Bits);
        return new PackedMatrix(weights.Layout, weights.Bits, weights.Rows, weights.Columns, weights.PerRow, codes, (float[])weights.Scales.Clone(), null);
    }

    /// <summary>Unpacks back to <see cref="QuantizedWeights"/> (the codes are unpacked, scales copied).</summary>
    public QuantizedWeights ToQuantizedWeights()
    {
        if (Layout == CodeLayout.Float)
            return new QuantizedWeights(CodeLayout.Float, 32, Rows, Columns, false, [], [], (float[])_values!.Clone());
        return new QuantizedWeights(Layout, Bits, Rows, Columns, PerRow, BitPacking.Unpack(_codes, Rows, Columns, Bits), (float[])_scales.Clone());
    }

    /// <summary>Decodes the whole matrix, row-major; bit-identical to <see cref="QuantizedWeights.DecodeAll"/>.</summary>
    public float[] Decode()
    {
        if (Layout == CodeLayout.Float) return (float[])_values!.Clone();
        var result = new float[Rows * Columns];
        for (int r = 0; r < Rows; r++) DecodeRow(r, result.AsSpan(r * Columns, Columns));
        return result;
    }

    /// <summary>
    /// Decodes row <paramref name="row"/> into <paramref name="destination"/> (Columns long); bit-identical to that row of
    /// <see cref="Decode"/>. An embedding lookup.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="row"/> is not in [0, Rows).</exception>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is not Columns long.</exception>
    public void DecodeRow(int row, Span<float> destination)
    {
        if ((uint)row >= (uint)Rows) throw new ArgumentOutOfRangeException(nameof(row), row, $"Row must be in [0, {Rows}).");
        if (destination.Length != Columns)
            throw new ArgumentException($"Destination has length {destination.Length}; the matrix has {Columns} columns.", nameof(destination));
        if (Layout == CodeLayout.Float)
        {
            _values.AsSpan(row * Columns, Columns).CopyTo(destination);
            return;
        }
        var rowCodes = RowCodes(row);
        int g = PerRow ? row : 0;
        switch (Layout)
        {
            case CodeLayout.Sign:
                float s = _scales[g];
                for (int c = 0; c < Columns; c++) destination[c] = ((rowCodes[c >> 3] >> (c & 7)) & 1) == 1 ? s : -s;
                break;
            case CodeLayout.SignedInteger:
                float si = _scales[g];
                for (int c = 0; c < Columns; c++) destination[c] = si * SignExtend(BitPacking.Get(rowCodes, Bits, c), Bits);
                break;
            default:
                for (int c = 0; c < Columns; c++)
                {
                    int code = BitPacking.Get(rowCodes, Bits, c);
                    float v = 0f;
                    for (int b = 0; b < Bits; b++)
                    {
                        float sb = _scales[g * Bits + b];
                        v += ((code >> b) & 1) == 1 ? sb : -sb;
                    }
                    destination[c] = v;
                }
                break;
        }
    }

    /// <summary>
    /// Computes <c>y = W x</c> from the packed form (no full decode). Uses the 256-bit SIMD kernel when the
    /// hardware accelerates it, else the scalar reference kernel.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="x"/> is not Columns long or <paramref name="y"/> not Rows long.</exception>
    public void MultiplyVector(ReadOnlySpan<float> x, Span<float> y)
    {
        if (Vector256.IsHardwareAccelerated) MultiplyVectorSimd(x, y);
        else MultiplyVectorScalar(x, y);
    }

    /// <summary>Scalar reference kernel for <see cref="MultiplyVector"/>.</summary>
    internal void MultiplyVectorScalar(ReadOnlySpan<float> x, Span<float> y)
    {
        CheckShapes(x, y);
        if (Layout == CodeLayout.Float)
        {
            for (int r = 0; r < Rows; r++)
            {
                var w = _values.AsSpan(r * Columns, Columns);
                float acc = 0f;
                for (int c = 0; c < Columns; c++) acc += w[c] * x[c];
                y[r] = acc;
            }
            return;
        }
        float sumX = 0f;
        for (int c = 0; c < Columns; c++) sumX += x[c];
        Span<float> planes = stackalloc float[8];
        for (int r = 0; r < Rows; r++)
        {
            var row = RowCodes(r);
            int g = PerRow ? r : 0;
            switch (Layout)
            {
                case CodeLayout.Sign:
                {
                    // W x = s * (sum_{bit=1} x - sum_{bit=0} x) = s * (2 * sum_{bit=1} x - sum x).
                    float ones = 0f;
                    for (int c = 0; c < Columns; c++)
                        if (((row[c >> 3] >> (c & 7)) & 1) != 0) ones += x[c];
                    y[r] = _scales[g] * (2f * ones - sumX);
                    break;
                }
                case CodeLayout.SignedInteger:
                {
                    float acc = 0f;
                    for (int c = 0; c < Columns; c++) acc += SignExtend(BitPacking.Get(row, Bits, c), Bits) * x[c];
                    y[r] = _scales[g] * acc;
                    break;
                }
                default:
                {
                    // Per plane b: sum_c s_b * (+-1) x_c = s_b * (2 * sum_{bit b=1} x - sum x).
                    planes.Clear();
                    for (int c = 0; c < Columns; c++)
                    {
                        int code = BitPacking.Get(row, Bits, c);
                        for (int b = 0; b < Bits; b++)
                            if (((code >> b) & 1) != 0) planes[b] += x[c];
                    }
                    float acc = 0f;
                    for (int b = 0; b < Bits; b++) acc += _scales[g * Bits + b] * (2f * planes[b] - sumX);
                    y[r] = acc;
                    break;
                }
            }
        }
    }

    /// <summary>
    /// SIMD kernel for <see cref="MultiplyVector"/> on <see cref="Vector256{T}"/>. Eight codes at k bits fill exactly
    /// k bytes, so each group of 8 columns is read as one little-endian word and expanded into 8 int lanes
    /// (a variable shift with AVX2), then multiplied with 8 inputs. Correct (if slow) without hardware support too.
    /// </summary>
    internal void MultiplyVectorSimd(ReadOnlySpan<float> x, Span<float> y)
    {
        CheckShapes(x, y);
        int groups = Columns / 8;
        int tail = groups * 8;
        ref float x0 = ref MemoryMarshal.GetReference(x);
        if (Layout == CodeLayout.Float)
        {
            for (int r = 0; r < Rows; r++)
            {
                var w = _values.AsSpan(r * Columns, Columns);
                ref float w0 = ref MemoryMarshal.GetReference(w);
                var acc = Vector256<float>.Zero;
                for (int c = 0; c < tail; c += 8)
                    acc += Vector256.LoadUnsafe(ref w0, (nuint)c) * Vector256.LoadUnsafe(ref x0, (nuint)c);
                float sum = Vector256.Sum(acc);
                for (int c = tail; c < Columns; c++) sum += w[c] * x[c];
                y[r] = sum;
            }
            return;
        }

        float sumX = SumSimd(x);
        int k = Bits;
        var laneShift = Vector256.Create(0u, (uint)k, 2u * (uint)k, 3u * (uint)k, 0u, (uint)k, 2u * (uint)k, 3u * (uint)k);
        var codeMask = Vector256.Create((1 << k) - 1);
        var one = Vector256.Create(1);
        var laneBits = Vector256.Create(1, 2, 4, 8, 16, 32, 64, 128);
        Span<Vector256<float>> planeAcc = stackalloc Vector256<float>[8];

        for (int r = 0; r < Rows; r++)
        {
            var row = RowCodes(r);
            int g = PerRow ? r : 0;
            switch (Layout)
            {
                case CodeLayout.Sign:
                {
                    var acc = Vector256<float>.Zero;
                    for (int gi = 0; gi < groups; gi++)
                    {
                        var set = Vector256.Equals(Vector256.Create((int)row[gi]) & laneBits, laneBits).AsSingle();
                        acc += set & Vector256.LoadUnsafe(ref x0, (nuint)(gi * 8));
                    }
                    float ones = Vector256.Sum(acc);
                    for (int c = tail; c < Columns; c++)
                        if (((row[c >> 3] >> (c & 7)) & 1) != 0) ones += x[c];
                    y[r] = _scales[g] * (2f * ones - sumX);
                    break;
                }
                case CodeLayout.SignedInteger when k == 2 && Avx2.IsSupported && Fma.IsSupported:
                {
                    y[r] = _scales[g] * TwoBitDot(row, x);
                    break;
                }
                case CodeLayout.SignedInteger:
                {
                    var signBit = Vector256.Create(1 << (k - 1));
                    var acc = Vector256<float>.Zero;
                    for (int gi = 0; gi < groups; gi++)
                    {
                        var codes = Expand8(ReadGroup(row, gi * k, k), k, laneShift, codeMask);
                        var signed = (codes ^ signBit) - signBit;
                        acc += Vector256.ConvertToSingle(signed) * Vector256.LoadUnsafe(ref x0, (nuint)(gi * 8));
                    }
                    float sum = Vector256.Sum(acc);
                    for (int c = tail; c < Columns; c++) sum += SignExtend(BitPacking.Get(row, k, c), k) * x[c];
                    y[r] = _scales[g] * sum;
                    break;
                }
                default:
                {
                    for (int b = 0; b < k; b++) planeAcc[b] = Vector256<float>.Zero;
                    for (int gi = 0; gi < groups; gi++)
                    {
                        var codes = Expand8(ReadGroup(row, gi * k, k), k, laneShift, codeMask);
                        var xv = Vector256.LoadUnsafe(ref x0, (nuint)(gi * 8));
                        for (int b = 0; b < k; b++)
                        {
                            var set = Vector256.Equals(Vector256.ShiftRightLogical(codes, b) & one, one).AsSingle();
                            planeAcc[b] += set & xv;
                        }
                    }
                    float acc = 0f;
                    for (int b = 0; b < k; b++)
                    {
                        float ones = Vector256.Sum(planeAcc[b]);
                        for (int c = tail; c < Columns; c++)
                            if (((BitPacking.Get(row, k, c) >> b) & 1) != 0) ones += x[c];
                        acc += _scales[g * k + b] * (2f * ones - sumX);
                    }
                    y[r] = acc;
                    break;
                }
            }
        }
    }

    /// <summary>
    /// Writes the serialized form described on the class (exactly <see cref="SizeInBytes"/> bytes).
    /// </summary>
    public void Write(BinaryWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        Span<byte> header = stackalloc byte[16];
        WriteHeader(header);
        uint crc = Crc32.Update(Crc32.Initial, header);
        writer.Write(header);
        var codes = StoredAsTrits ? TritPacking.FromTwoBit(_codes, Rows, Columns) : _codes;
        crc = Crc32.Update(crc, codes);
        writer.Write(codes);
        crc = WriteFloats(writer, _scales, crc);
        if (_values is not null) crc = WriteFloats(writer, _values, crc);
        writer.Write(Crc32.Finish(crc));
    }

    /// <summary>Reads a matrix written by <see cref="Write"/>, validating every field and the checksum.</summary>
    /// <exception cref="InvalidDataException">The stream is truncated, foreign, of an unknown version, or corrupt.</exception>
    public static PackedMatrix Read(BinaryReader reader)
    {
        ArgumentNullException.ThrowIfNull(reader);
        Span<byte> header = stackalloc byte[16];
        ReadExactly(reader, header, "header");
        if (!header[..4].SequenceEqual(MagicBytes))
            throw new InvalidDataException($"Not a packed matrix: expected magic 'QPKM', found bytes {Convert.ToHexString(header[..4])}.");
        if (header[4] is < 1 or > FormatVersion)
            throw new InvalidDataException($"Packed matrix format version {header[4]} is not supported; this build reads versions 1 to {FormatVersion}.");
        if (header[5] > (byte)CodeLayout.BinaryBases)
            throw new InvalidDataException($"Corrupt packed matrix: unknown code layout {header[5]}.");
        var layout = (CodeLayout)header[5];
        int bits = header[6];
        if (layout == CodeLayout.Float ? bits != 32 : !BitsValid(layout, bits))
            throw new InvalidDataException($"Corrupt packed matrix: {bits} bits is not valid for layout {layout}.");
        bool trits = (header[7] & TritFlag) != 0;
        if ((header[7] & ~(PerRowFlag | TritFlag)) != 0 || (layout == CodeLayout.Float && header[7] != 0)
            || (trits && (header[4] < 2 || layout != CodeLayout.SignedInteger || bits != 2)))
            throw new InvalidDataException($"Corrupt packed matrix: unknown flags 0x{header[7]:X2} for version {header[4]}, {layout}, {bits} bits.");
        bool perRow = (header[7] & PerRowFlag) != 0;
        int rows = BinaryPrimitives.ReadInt32LittleEndian(header[8..]);
        int columns = BinaryPrimitives.ReadInt32LittleEndian(header[12..]);
        if (rows < 0 || columns < 0)
            throw new InvalidDataException($"Corrupt packed matrix: negative shape {rows} x {columns}.");
        long count = (long)rows * columns;
        long codeLength = layout == CodeLayout.Float ? 0 : (long)rows * (trits ? TritPacking.BytesPerRow(columns) : BitPacking.BytesPerRow(columns, bits));
        long scaleCount = layout == CodeLayout.Float ? 0 : (perRow ? rows : 1L) * (layout == CodeLayout.BinaryBases ? bits : 1);
        long valueCount = layout == CodeLayout.Float ? count : 0;
        if (codeLength > Array.MaxLength || valueCount > Array.MaxLength / 4 || count > int.MaxValue)
            throw new InvalidDataException($"Corrupt packed matrix: shape {rows} x {columns} is too large.");
        long payload = codeLength + 4 * (scaleCount + valueCount) + 4;
        if (reader.BaseStream.CanSeek && reader.BaseStream.Length - reader.BaseStream.Position < payload)
            throw new InvalidDataException(
                $"Packed matrix is truncated: {rows} x {columns} ({layout}, {bits} bits) needs {payload} more bytes; the stream has {reader.BaseStream.Length - reader.BaseStream.Position}.");

        uint crc = Crc32.Update(Crc32.Initial, header);
        var codes = new byte[codeLength];
        ReadExactly(reader, codes, "codes");
        crc = Crc32.Update(crc, codes);
        var scales = ReadFloats(reader, (int)scaleCount, ref crc, "scales");
        float[]? values = layout == CodeLayout.Float ? ReadFloats(reader, (int)valueCount, ref crc, "values") : null;
        Span<byte> stored = stackalloc byte[4];
        ReadExactly(reader, stored, "checksum");
        uint expected = BinaryPrimitives.ReadUInt32LittleEndian(stored);
        uint actual = Crc32.Finish(crc);
        if (expected != actual)
            throw new InvalidDataException($"Corrupt packed matrix ({rows} x {columns}, {layout}, {bits} bits): checksum mismatch, stored 0x{expected:X8}, computed 0x{actual:X8}.");
        if (trits) codes = TritPacking.ToTwoBit(codes, rows, columns);
        return new PackedMatrix(layout, bits, rows, columns, perRow, codes, scales, values);
    }

    private ReadOnlySpan<byte> RowCodes(int row) => _codes.AsSpan(row * RowStride, RowStride);

    private void CheckShapes(ReadOnlySpan<float> x, Span<float> y)
    {
        if (x.Length != Columns) throw new ArgumentException($"x has length {x.Length}; the matrix has {Columns} columns.", nameof(x));
        if (y.Length != Rows) throw new ArgumentException($"y has length {y.Length}; the matrix has {Rows} rows.", nameof(y));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int SignExtend(int code, int bits)
    {
        int signBit = 1 << (bits - 1);
        return (code ^ signBit) - signBit;
    }

    /// <summary>Reads the k bytes (8 codes of k bits) starting at <paramref name="offset"/> as a little-endian word.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong ReadGroup(ReadOnlySpan<byte> row, int offset, int k)
    {
        if (offset + 8 <= row.Length) return BinaryPrimitives.ReadUInt64LittleEndian(row[offset..]);
        ulong u = 0;
        for (int i = 0; i < k; i++) u |= (ulong)row[offset + i] << (8 * i);
        return u;
    }

    /// <summary>Splits a word holding 8 codes of k bits into 8 int lanes (code i in lane i).</summary>
    /// <summary>For each byte of 2-bit codes, the values of its 4 codes (two's complement: 0, 1, -2, -1), lowest code first.</summary>
    /// <summary>The values of the four 2-bit codes (two's complement: 0, 1, -2, -1), twice: one 128-bit lane each.</summary>
    private static readonly Vector256<float> TwoBitCodeValues = Vector256.Create(0f, 1f, -2f, -1f, 0f, 1f, -2f, -1f);

    /// <summary>Where codes 0..7 and 8..15 of a 32-bit word of 2-bit codes start.</summary>
    private static readonly Vector256<uint> TwoBitShiftsLow = Vector256.Create(0u, 2, 4, 6, 8, 10, 12, 14);
    private static readonly Vector256<uint> TwoBitShiftsHigh = Vector256.Create(16u, 18, 20, 22, 24, 26, 28, 30);

    /// <summary>
    /// The dot product of a row of 2-bit codes with <paramref name="x"/> (AVX2 + FMA). Sixteen codes are one little-endian
    /// 32-bit word: broadcast to eight lanes, shifted so each lane's code sits in its two low bits (a variable shift), and
    /// turned into its value by <c>vpermilps</c>, which reads only those two bits as the index into the four code values;
    /// no table in memory, two multiply-adds per word.
    /// </summary>
    private static float TwoBitDot(ReadOnlySpan<byte> row, ReadOnlySpan<float> x)
    {
        ref byte codes = ref MemoryMarshal.GetReference(row);
        ref float x0 = ref MemoryMarshal.GetReference(x);
        var values = TwoBitCodeValues;
        var acc0 = Vector256<float>.Zero;
        var acc1 = Vector256<float>.Zero;
        int columns = x.Length, c = 0;
        for (; c + 16 <= columns; c += 16)
        {
            var word = Vector256.Create(Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref codes, c >> 2)));
            var w0 = Avx.PermuteVar(values, Avx2.ShiftRightLogicalVariable(word, TwoBitShiftsLow).AsInt32());
            var w1 = Avx.PermuteVar(values, Avx2.ShiftRightLogicalVariable(word, TwoBitShiftsHigh).AsInt32());
            acc0 = Fma.MultiplyAdd(w0, Vector256.LoadUnsafe(ref x0, (nuint)c), acc0);
            acc1 = Fma.MultiplyAdd(w1, Vector256.LoadUnsafe(ref x0, (nuint)(c + 8)), acc1);
        }
        float sum = Vector256.Sum(acc0 + acc1);
        for (; c < columns; c++) sum += SignExtend(BitPacking.Get(row, 2, c), 2) * x[c];
        return sum;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Expand8(ulong word, int k, Vector256<uint> laneShift, Vector256<int> mask)
    {
        // Codes 0..3 lie in bits [0, 4k) and codes 4..7 in [4k, 8k); each half fits in 32 bits (k <= 8).
        uint lo = (uint)word, hi = (uint)(word >> (4 * k));
        if (Avx2.IsSupported)
        {
            var halves = Vector256.Create(Vector128.Create(lo), Vector128.Create(hi));
            return Avx2.ShiftRightLogicalVariable(halves, laneShift).AsInt32() & mask;
        }
        int m = (1 << k) - 1;
        return Vector256.Create(
            (int)lo & m, (int)(lo >> k) & m, (int)(lo >> (2 * k)) & m, (int)(lo >> (3 * k)) & m,
            (int)hi & m, (int)(hi >> k) & m, (int)(hi >> (2 * k)) & m, (int)(hi >> (3 * k)) & m);
    }

    private static float SumSimd(ReadOnlySpan<float> x)
    {
        var acc = Vector256<float>.Zero;
        int c = 0;
        ref float x0 = ref MemoryMarshal.GetReference(x);
        for (; c + 8 <= x.Length; c += 8) acc += Vector256.LoadUnsafe(ref x0, (nuint)c);
        float sum = Vector256.Sum(acc);
        for (; c < x.Length; c++) sum += x[c];
        return sum;
    }

    private static bool BitsValid(CodeLayout layout, int bits) => layout switch
    {
        CodeLayout.Sign => bits == 1,
        CodeLayout.SignedInteger or CodeLayout.BinaryBases => bits is >= 1 and <= 8,
        _ => false,
    };

    private static void ValidateBits(CodeLayout layout, int bits)
    {
        if (!Enum.IsDefined(layout))
            throw new ArgumentException($"Unknown code layout {(int)layout}.", "weights");
        if (!BitsValid(layout, bits))
            throw new ArgumentException($"{bits} bits is not valid for layout {layout}: Sign needs 1, SignedInteger and BinaryBases need 1..8.", "weights");
    }

    private void WriteHeader(Span<byte> header)
    {
        MagicBytes.CopyTo(header);
        header[4] = FormatVersion;
        header[5] = (byte)Layout;
        header[6] = (byte)Bits;
        header[7] = (byte)((PerRow && Layout != CodeLayout.Float ? PerRowFlag : 0) | (StoredAsTrits ? TritFlag : 0));
        BinaryPrimitives.WriteInt32LittleEndian(header[8..], Rows);
        BinaryPrimitives.WriteInt32LittleEndian(header[12..], Columns);
    }

    private static uint WriteFloats(BinaryWriter writer, float[] values, uint crc)
    {
        Span<byte> buffer = stackalloc byte[1024];
        for (int i = 0; i < values.Length;)
        {
            int n = Math.Min(values.Length - i, buffer.Length / 4);
            for (int j = 0; j < n; j++) BinaryPrimitives.WriteSingleLittleEndian(buffer[(4 * j)..], values[i + j]);
            var chunk = buffer[..(4 * n)];
            crc = Crc32.Update(crc, chunk);
            writer.Write(chunk);
            i += n;
        }
        return crc;
    }

    private static float[] ReadFloats(BinaryReader reader, int count, ref uint crc, string what)
    {
        var result = new float[count];
        Span<byte> buffer = stackalloc byte[1024];
        for (int i = 0; i < count;)
        {
            int n = Math.Min(count - i, buffer.Length / 4);
            var chunk = buffer[..(4 * n)];
            ReadExactly(reader, chunk, what);
            crc = Crc32.Update(crc, chunk);
            for (int j = 0; j < n; j++) result[i + j] = BinaryPrimitives.ReadSingleLittleEndian(chunk[(4 * j)..]);
            i += n;
        }
        return result;
    }

    private static void ReadExactly(BinaryReader reader, Span<byte> destination, string what)
    {
        int total = 0;
        while (total < destination.Length)
        {
            int n = reader.Read(destination[total..]);
            if (n == 0)
                throw new InvalidDataException($"Packed matrix is truncated: the stream ended while reading the {what} ({total} of {destination.Length} bytes).");
            total += n;
        }
    }
}
