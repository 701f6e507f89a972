using System.Buffers.Binary;
using System.Text;

namespace Microsoft.ML.Quantized;

/// <summary>
/// The few pieces of the protocol-buffer wire format that an ONNX file needs (https://protobuf.dev/programming-guides/encoding/):
/// varint fields (wire type 0), 32-bit floats (wire type 5) and length-delimited bytes, strings and nested messages
/// (wire type 2). Repeated fields are written one tag per element, which every protobuf reader accepts.
/// </summary>
internal sealed class ProtobufWriter
{
    private const int VarintWire = 0, LengthDelimitedWire = 2, Fixed32Wire = 5;

    private readonly MemoryStream _buffer = new();

    /// <summary>An int32/int64/enum field as a varint (negative values take ten bytes, as protobuf writes them).</summary>
    public void Int64(int field, long value)
    {
        Tag(field, VarintWire);
        Varint(unchecked((ulong)value));
    }

    /// <summary>A float field (fixed 32 bits, little-endian).</summary>
    public void Float(int field, float value)
    {
        Tag(field, Fixed32Wire);
        Span<byte> bytes = stackalloc byte[4];
        BinaryPrimitives.WriteSingleLittleEndian(bytes, value);
        _buffer.Write(bytes);
    }

    /// <summary>A UTF-8 string field.</summary>
    public void String(int field, string value) => Bytes(field, Encoding.UTF8.GetBytes(value));

    /// <summary>A bytes field.</summary>
    public void Bytes(int field, ReadOnlySpan<byte> value)
    {
        Tag(field, LengthDelimitedWire);
        Varint((ulong)value.Length);
        _buffer.Write(value);
    }

    /// <summary>A nested message field, written by <paramref name="write"/>.</summary>
    public void Message(int field, Action<ProtobufWriter> write)
    {
        var inner = new ProtobufWriter();
        write(inner);
        Tag(field, LengthDelimitedWire);
        Varint((ulong)inner._buffer.Length);
        inner._buffer.Position = 0;
        inner._buffer.CopyTo(_buffer);
    }

    /// <summary>Copies everything written so far to <paramref name="stream"/>.</summary>
    public void CopyTo(Stream stream)
    {
        _buffer.Position = 0;
        _buffer.CopyTo(stream);
    }

    private void Tag(int field, int wireType) => Varint((ulong)((uint)field << 3 | (uint)wireType));

    private void Varint(ulong value)
    {
        while (value >= 0x80)
        {
            _buffer.WriteByte((byte)(value | 0x80));
            value >>= 7;
        }
        _buffer.WriteByte((byte)value);
    }
}
