using System.Buffers.Binary;
using System.IO.Compression;

namespace Microsoft.ML.Quantized;

/// <summary>Images read from an IDX file: each image row-major, pixels scaled from bytes to [0, 1].</summary>
/// <param name="Rows">Pixel rows per image.</param>
/// <param name="Columns">Pixel columns per image.</param>
/// <param name="Images">One array of Rows * Columns values per image.</param>
public sealed record IdxImages(int Rows, int Columns, float[][] Images);

/// <summary>
/// Reads IDX files (LeCun's MNIST format): a big-endian header (two zero bytes, a type code, the number of
/// dimensions, then each dimension as a 32-bit integer) followed by the values. Unsigned-byte images (3
/// dimensions) and labels (1 dimension) are supported; gzip-compressed files (<c>*.gz</c>) are read as well.
/// A wrong or damaged file gets an <see cref="InvalidDataException"/> saying what is wrong.
/// </summary>
public static class IdxReader
{
    private const byte UnsignedByte = 0x08;

    /// <summary>Reads images from an IDX3 unsigned-byte file; <paramref name="maxCount"/> (0 = all) keeps the first ones only.</summary>
    public static IdxImages ReadImages(string path, int maxCount = 0)
    {
        using var file = OpenFile(path);
        return ReadImages(file, maxCount, path);
    }

    /// <summary>Reads images from an IDX3 unsigned-byte stream.</summary>
    public static IdxImages ReadImages(Stream stream, int maxCount = 0, string source = "IDX stream")
    {
        var dims = ReadHeader(stream, 3, source, "images (3 dimensions: count, rows, columns)");
        int count = Take(dims[0], maxCount);
        int rows = dims[1], columns = dims[2];
        int size = checked(rows * columns);
        var bytes = new byte[size];
        var images = new float[count][];
        for (int i = 0; i < count; i++)
        {
            ReadExactly(stream, bytes, source, $"image {i} of {dims[0]}");
            var image = new float[size];
            for (int p = 0; p < size; p++) image[p] = bytes[p] / 255f;
            images[i] = image;
        }
        return new IdxImages(rows, columns, images);
    }

    /// <summary>Reads labels from an IDX1 unsigned-byte file; <paramref name="maxCount"/> (0 = all) keeps the first ones only.</summary>
    public static int[] ReadLabels(string path, int maxCount = 0)
    {
        using var file = OpenFile(path);
        return ReadLabels(file, maxCount, path);
    }

    /// <summary>Reads labels from an IDX1 unsigned-byte stream.</summary>
    public static int[] ReadLabels(Stream stream, int maxCount = 0, string source = "IDX stream")
    {
        var dims = ReadHeader(stream, 1, source, "labels (1 dimension: count)");
        int count = Take(dims[0], maxCount);
        var bytes = new byte[count];
        ReadExactly(stream, bytes, source, $"{count} labels");
        return bytes.Select(b => (int)b).ToArray();
    }

    private static Stream OpenFile(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path))
            throw new FileNotFoundException($"IDX file '{path}' not found. For MNIST run build/fetch-data.sh --only mnist (files land in data/mnist).", path);
        Stream file = new BufferedStream(File.OpenRead(path), 1 << 16);
        if (path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase)) file = new GZipStream(file, CompressionMode.Decompress);
        return file;
    }

    private static int[] ReadHeader(Stream stream, int expectedDimensions, string source, string what)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var magic = new byte[4];
        ReadExactly(stream, magic, source, "the 4-byte magic number");
        if (magic[0] == 0x1F && magic[1] == 0x8B)
            throw new InvalidDataException($"'{source}' is gzip-compressed; decompress it (gunzip) or name it *.gz so the reader decompresses it.");
        if (magic[0] != 0 || magic[1] != 0)
            throw new InvalidDataException($"'{source}' is not an IDX file: its magic number starts with 0x{magic[0]:X2} 0x{magic[1]:X2}, not two zero bytes.");
        if (magic[2] != UnsignedByte)
            throw new InvalidDataException($"'{source}' holds IDX type 0x{magic[2]:X2}; only unsigned bytes (0x08, as in MNIST) are supported.");
        if (magic[3] != expectedDimensions)
            throw new InvalidDataException($"'{source}' has {magic[3]} dimension(s); {what} need {expectedDimensions}. Is it the other file of the pair (images vs labels)?");
        var header = new byte[4 * expectedDimensions];
        ReadExactly(stream, header, source, "the dimension sizes");
        var dims = new int[expectedDimensions];
        for (int d = 0; d < expectedDimensions; d++)
        {
            dims[d] = BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(4 * d));
            if (dims[d] < 0 || (d > 0 && dims[d] == 0))
                throw new InvalidDataException($"'{source}' has an invalid size {dims[d]} for dimension {d}.");
        }
        return dims;
    }

    private static int Take(int available, int maxCount)
    {
        if (maxCount < 0) throw new ArgumentOutOfRangeException(nameof(maxCount), maxCount, "maxCount must be 0 (all) or positive.");
        return maxCount == 0 ? available : Math.Min(available, maxCount);
    }

    private static void ReadExactly(Stream stream, byte[] buffer, string source, string what)
    {
        int read = 0;
        while (read < buffer.Length)
        {
            int n = stream.Read(buffer, read, buffer.Length - read);
            if (n == 0) throw new InvalidDataException($"'{source}' ends early while reading {what}: the file is truncated.");
            read += n;
        }
    }
}
