using System.IO.Compression;

namespace Microsoft.ML.Quantized.Tests;

[TestClass]
public sealed class IdxReaderTests
{
    private static byte[] Idx(byte type, int[] dims, byte[] values)
    {
        var bytes = new List<byte> { 0, 0, type, (byte)dims.Length };
        foreach (var d in dims) bytes.AddRange(new[] { (byte)(d >> 24), (byte)(d >> 16), (byte)(d >> 8), (byte)d });
        bytes.AddRange(values);
        return bytes.ToArray();
    }

    private static byte[] TwoImages => Idx(0x08, new[] { 2, 2, 3 }, new byte[] { 0, 255, 51, 102, 153, 204, 1, 2, 3, 4, 5, 6 });

    [TestMethod]
    public void ReadsImagesScaledToUnitRangeRowMajor()
    {
        var images = IdxReader.ReadImages(new MemoryStream(TwoImages));
        Assert.AreEqual(2, images.Rows);
        Assert.AreEqual(3, images.Columns);
        Assert.AreEqual(2, images.Images.Length);
        CollectionAssert.AreEqual(new[] { 0f, 1f, 0.2f, 0.4f, 0.6f, 0.8f }, images.Images[0]);
        Assert.AreEqual(6 / 255f, images.Images[1][5], 1e-7);
        Assert.AreEqual(1, IdxReader.ReadImages(new MemoryStream(TwoImages), maxCount: 1).Images.Length);
    }

    [TestMethod]
    public void ReadsLabelsAndGzippedFiles()
    {
        var labels = Idx(0x08, new[] { 4 }, new byte[] { 7, 0, 9, 3 });
        CollectionAssert.AreEqual(new[] { 7, 0, 9, 3 }, IdxReader.ReadLabels(new MemoryStream(labels)));
        CollectionAssert.AreEqual(new[] { 7, 0 }, IdxReader.ReadLabels(new MemoryStream(labels), maxCount: 2));
        var path = Path.Combine(Path.GetTempPath(), "mlqz-idx-" + Guid.NewGuid().ToString("N") + ".gz");
        try
        {
            using (var file = File.Create(path))
            using (var gzip = new GZipStream(file, CompressionLevel.Fastest)) gzip.Write(labels);
            CollectionAssert.AreEqual(new[] { 7, 0, 9, 3 }, IdxReader.ReadLabels(path));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [TestMethod]
    public void BadFilesGetClearErrors()
    {
        var notIdx = Assert.ThrowsExactly<InvalidDataException>(() => IdxReader.ReadImages(new MemoryStream("hello world, not IDX"u8.ToArray())));
        StringAssert.Contains(notIdx.Message, "not an IDX file");
        var type = Assert.ThrowsExactly<InvalidDataException>(() => IdxReader.ReadLabels(new MemoryStream(Idx(0x0D, new[] { 1 }, new byte[4]))));
        StringAssert.Contains(type.Message, "type 0x0D");
        var swapped = Assert.ThrowsExactly<InvalidDataException>(() => IdxReader.ReadLabels(new MemoryStream(TwoImages)));
        StringAssert.Contains(swapped.Message, "3 dimension(s)");
        var truncated = Assert.ThrowsExactly<InvalidDataException>(() => IdxReader.ReadImages(new MemoryStream(TwoImages[..^2])));
        StringAssert.Contains(truncated.Message, "truncated");
        StringAssert.Contains(truncated.Message, "image 1");
        var header = Assert.ThrowsExactly<InvalidDataException>(() => IdxReader.ReadImages(new MemoryStream(new byte[] { 0, 0, 8 })));
        StringAssert.Contains(header.Message, "ends early");
        var gz = Assert.ThrowsExactly<InvalidDataException>(() => IdxReader.ReadLabels(new MemoryStream(new byte[] { 0x1F, 0x8B, 8, 0, 0, 0 })));
        StringAssert.Contains(gz.Message, "gzip");
        var missing = Assert.ThrowsExactly<FileNotFoundException>(() => IdxReader.ReadLabels("/nonexistent/train-labels-idx1-ubyte"));
        StringAssert.Contains(missing.Message, "fetch-data.sh");
    }
}
