using System.Buffers.Binary;

namespace Microsoft.ML.Quantized.Tests.Samples;

/// <summary>
/// A tiny MNIST in the IDX format, in a temporary folder: 60 training and 20 test 4x4 images, label 0 lighting the top two
/// rows and label 1 the bottom two, with noise (alternating labels, seed 7).
/// </summary>
internal static class TinyMnist
{
    /// <summary>Runs <paramref name="body"/> with the folder's path, then deletes the folder.</summary>
    public static void With(Action<string> body)
    {
        var folder = Directory.CreateTempSubdirectory("tiny-mnist-").FullName;
        try
        {
            var random = new Random(7);
            Write(folder, "train", 60, random);
            Write(folder, "t10k", 20, random);
            body(folder);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private static void Write(string folder, string prefix, int count, Random random)
    {
        var labels = Enumerable.Range(0, count).Select(i => (byte)(i % 2)).ToArray();
        var images = labels.SelectMany(label => Enumerable.Range(0, 16).Select(p => (byte)((p / 8 == label ? 200 : 20) + random.Next(40)))).ToArray();
        File.WriteAllBytes(Path.Combine(folder, $"{prefix}-images-idx3-ubyte"), [.. Header(3, count, 4, 4), .. images]);
        File.WriteAllBytes(Path.Combine(folder, $"{prefix}-labels-idx1-ubyte"), [.. Header(1, count), .. labels]);
    }

    private static byte[] Header(byte dimensions, params int[] sizes)
    {
        var header = new byte[4 + 4 * sizes.Length];
        header[2] = 0x08;
        header[3] = dimensions;
        for (int d = 0; d < sizes.Length; d++) BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(4 + 4 * d), sizes[d]);
        return header;
    }
}
