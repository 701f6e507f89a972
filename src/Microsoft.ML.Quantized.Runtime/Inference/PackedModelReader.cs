using System.Buffers.Binary;

namespace Microsoft.ML.Quantized;

/// <summary>
/// Reads the packed model format written by <see cref="PackedModelWriter"/>, validating as it goes: every count and
/// size against its expected value or range, every matrix's own checksum and shape, and at the end the checksum of the
/// other bytes. Whatever is wrong with the stream surfaces as a <see cref="ModelFormatException"/> that names the model
/// and the field.
/// </summary>
internal sealed class PackedModelReader
{
    /// <summary>Largest dimension (rows, columns, vocabulary, hidden size) accepted from a stream.</summary>
    public const int MaxDimension = 1 << 26;

    private readonly BinaryReader _reader;
    private readonly string _what;
    private uint _crc = Crc32.Initial;

    private PackedModelReader(BinaryReader reader, string what)
    {
        _reader = reader;
        _what = what;
    }

    /// <summary>
    /// Reads a whole model: checks the magic and version, runs <paramref name="body"/>, checks the checksum. Truncation,
    /// corruption and inconsistent contents become <see cref="ModelFormatException"/>.
    /// </summary>
    /// <param name="reader">The stream.</param>
    /// <param name="magic">The expected 4-byte magic.</param>
    /// <param name="version">The format version this build reads.</param>
    /// <param name="what">The model's name for messages, e.g. "packed language model".</param>
    /// <param name="body">Reads the fields; may throw <see cref="ArgumentException"/> for contents the model rejects.</param>
    public static T Read<T>(BinaryReader reader, ReadOnlySpan<byte> magic, byte version, string what, Func<PackedModelReader, T> body) =>
        Read(reader, magic, version, version, what, (r, _) => body(r));

    /// <summary>
    /// Reads a whole model of any format version from <paramref name="oldestVersion"/> to <paramref name="version"/>; the
    /// version found is passed to <paramref name="body"/>. Otherwise as <see cref="Read{T}(BinaryReader, ReadOnlySpan{byte}, byte, string, Func{PackedModelReader, T})"/>.
    /// </summary>
    public static T Read<T>(BinaryReader reader, ReadOnlySpan<byte> magic, byte version, byte oldestVersion, string what, Func<PackedModelReader, byte, T> body)
    {
        ArgumentNullException.ThrowIfNull(reader);
        var r = new PackedModelReader(reader, what);
        try
        {
            Span<byte> found = stackalloc byte[magic.Length];
            r.ReadBytes(found, "magic");
            if (!found.SequenceEqual(magic))
                throw new ModelFormatException(
                    $"Not a {what}: expected magic '{System.Text.Encoding.ASCII.GetString(magic)}', found bytes {Convert.ToHexString(found)}.");
            byte foundVersion = r.ReadByte("format version");
            if (foundVersion > version)
                throw new ModelFormatException(
                    $"The {what} has format version {foundVersion}, newer than version {version}, which this library reads; load it with the Microsoft.ML.Quantized that saved it, or a later one.");
            if (foundVersion < oldestVersion)
                throw new ModelFormatException(oldestVersion == version
                    ? $"The {what} has format version {foundVersion}, older than version {version}, which this library reads; load it with the Microsoft.ML.Quantized that saved it, or retrain it."
                    : $"The {what} has format version {foundVersion}, older than versions {oldestVersion} to {version}, which this library reads; load it with the Microsoft.ML.Quantized that saved it, or retrain it.");
            var model = body(r, foundVersion);
            Span<byte> stored = stackalloc byte[4];
            ReadExactly(reader, stored, r, "checksum");
            uint expected = BinaryPrimitives.ReadUInt32LittleEndian(stored);
            uint actual = Crc32.Finish(r._crc);
            if (expected != actual)
                throw new ModelFormatException(
                    $"The {what} is damaged: the checksum of its settings and small arrays does not match (stored 0x{expected:X8}, computed 0x{actual:X8}).");
            return model;
        }
        catch (InvalidDataException e)
        {
            throw new ModelFormatException($"The {what} is damaged: {e.Message}", e);
        }
        catch (ArgumentException e)
        {
            throw new ModelFormatException($"The {what} is damaged: its contents are inconsistent ({e.Message}).", e);
        }
    }

    /// <summary>One byte.</summary>
    public byte ReadByte(string field)
    {
        Span<byte> b = stackalloc byte[1];
        ReadBytes(b, field);
        return b[0];
    }

    /// <summary>An int32 that must lie in [<paramref name="min"/>, <paramref name="max"/>].</summary>
    public int ReadInt32(string field, int min, int max)
    {
        Span<byte> b = stackalloc byte[4];
        ReadBytes(b, field);
        int value = BinaryPrimitives.ReadInt32LittleEndian(b);
        if (value < min || value > max) throw Damaged($"{field} is {value}, outside [{min}, {max}]");
        return value;
    }

    /// <summary>A float32.</summary>
    public float ReadSingle(string field)
    {
        Span<byte> b = stackalloc byte[4];
        ReadBytes(b, field);
        return BinaryPrimitives.ReadSingleLittleEndian(b);
    }

    /// <summary>A float array written by <see cref="PackedModelWriter.WriteSingles"/> that must hold <paramref name="count"/> values.</summary>
    public float[] ReadSingles(string field, int count)
    {
        ReadInt32($"{field} length", count, count);
        if (_reader.BaseStream.CanSeek && _reader.BaseStream.Length - _reader.BaseStream.Position < 4L * count)
            throw Damaged($"the stream ends inside {field} ({count} values)");
        var values = new float[count];
        for (int i = 0; i < count; i++) values[i] = ReadSingle(field);
        return values;
    }

    /// <summary>A packed matrix, which must be <paramref name="rows"/> x <paramref name="columns"/>.</summary>
    public PackedMatrix ReadMatrix(string field, int rows, int columns)
    {
        PackedMatrix matrix;
        try
        {
            matrix = PackedMatrix.Read(_reader);
        }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException)
        {
            throw new ModelFormatException($"The {_what} is damaged: {field}: {e.Message}", e);
        }
        if (matrix.Rows != rows || matrix.Columns != columns)
            throw Damaged($"{field} is {matrix.Rows} x {matrix.Columns}; expected {rows} x {columns}");
        return matrix;
    }

    /// <summary>The exception for a field that is out of range or inconsistent.</summary>
    public ModelFormatException Damaged(string detail) => new($"The {_what} is damaged: {detail}.");

    private void ReadBytes(Span<byte> destination, string field)
    {
        ReadExactly(_reader, destination, this, field);
        _crc = Crc32.Update(_crc, destination);
    }

    private static void ReadExactly(BinaryReader reader, Span<byte> destination, PackedModelReader r, string field)
    {
        int total = 0;
        while (total < destination.Length)
        {
            int n = reader.Read(destination[total..]);
            if (n == 0) throw new ModelFormatException($"The {r._what} is truncated: the stream ended while reading {field}.");
            total += n;
        }
    }
}
