using System.Buffers.Binary;

namespace Microsoft.ML.Quantized;

/// <summary>
/// Writes the packed model format read by <see cref="PackedModelReader"/>: a magic and a format version, then the
/// model's fields (little-endian) with every packed matrix inline in its own checksummed form
/// (<see cref="PackedMatrix.Write"/>), and last a CRC-32 of every byte that is not part of a matrix (the magic and
/// version included), so the small arrays (biases, gains, statistics, settings) are checked as well as the matrices.
/// </summary>
internal sealed class PackedModelWriter
{
    private readonly BinaryWriter _writer;
    private uint _crc = Crc32.Initial;

    private PackedModelWriter(BinaryWriter writer) => _writer = writer;

    /// <summary>Writes a whole model: magic, version, <paramref name="body"/>, checksum.</summary>
    public static void Write(BinaryWriter writer, ReadOnlySpan<byte> magic, byte version, Action<PackedModelWriter> body)
    {
        ArgumentNullException.ThrowIfNull(writer);
        var w = new PackedModelWriter(writer);
        w.WriteBytes(magic);
        w.WriteByte(version);
        body(w);
        writer.Write(Crc32.Finish(w._crc));
    }

    /// <summary>What <paramref name="write"/> writes, as bytes (a model's network inside a core model file).</summary>
    public static byte[] ToBytes(Action<BinaryWriter> write)
    {
        using var buffer = new MemoryStream();
        using (var writer = new BinaryWriter(buffer, System.Text.Encoding.UTF8, leaveOpen: true)) write(writer);
        return buffer.ToArray();
    }

    /// <summary>One byte.</summary>
    public void WriteByte(byte value) => WriteBytes([value]);

    /// <summary>A little-endian int32.</summary>
    public void WriteInt32(int value)
    {
        Span<byte> bytes = stackalloc byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(bytes, value);
        WriteBytes(bytes);
    }

    /// <summary>A little-endian float32.</summary>
    public void WriteSingle(float value)
    {
        Span<byte> bytes = stackalloc byte[4];
        BinaryPrimitives.WriteSingleLittleEndian(bytes, value);
        WriteBytes(bytes);
    }

    /// <summary>A float array: its length (int32), then the values.</summary>
    public void WriteSingles(ReadOnlySpan<float> values)
    {
        WriteInt32(values.Length);
        foreach (float v in values) WriteSingle(v);
    }

    /// <summary>A packed matrix in its own form (not part of the running checksum: it carries its own).</summary>
    public void WriteMatrix(PackedMatrix matrix) => matrix.Write(_writer);

    private void WriteBytes(ReadOnlySpan<byte> bytes)
    {
        _crc = Crc32.Update(_crc, bytes);
        _writer.Write(bytes);
    }
}
