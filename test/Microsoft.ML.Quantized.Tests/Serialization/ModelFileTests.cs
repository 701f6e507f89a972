using System.Security.Cryptography;
using System.Text;

namespace Microsoft.ML.Quantized.Tests;

[TestClass]
public sealed class ModelFileTests
{
    [TestMethod]
    public void RoundTripsHeaderAndPayload()
    {
        using var stream = new MemoryStream();
        ModelFile.Write(stream, "language-model", "{\"a\":1}", new byte[] { 1, 2, 3 });
        stream.Position = 0;
        var (header, payload) = ModelFile.Read(stream, "language-model");
        Assert.AreEqual("{\"a\":1}", header);
        CollectionAssert.AreEqual(new byte[] { 1, 2, 3 }, payload);
    }

    [TestMethod]
    public void AFileOfAnotherFormatVersionSaysWhichVersionsAreInvolved()
    {
        // A well-formed file (valid checksum) written by a hypothetical future library with format version 99.
        using var body = new MemoryStream();
        using (var w = new BinaryWriter(body, Encoding.UTF8, leaveOpen: true))
        {
            w.Write("MLQZMODL"u8.ToArray());
            w.Write(99);
            w.Write("9.9.9.9");
            w.Write("language-model");
            w.Write("{}");
            w.Write(0);
        }
        var bytes = body.ToArray();
        var file = new MemoryStream(bytes.Concat(SHA256.HashData(bytes)).ToArray());
        var error = Assert.ThrowsExactly<ModelFormatException>(() => ModelFile.Read(file, "language-model"));
        StringAssert.Contains(error.Message, "format version 99");
        StringAssert.Contains(error.Message, "9.9.9.9");
        StringAssert.Contains(error.Message, $"reads format version {ModelFile.FormatVersion}");
    }

    [TestMethod]
    public void AModelOfAnotherKindIsRefused()
    {
        using var stream = new MemoryStream();
        ModelFile.Write(stream, "sequence-classifier", "{}", Array.Empty<byte>());
        stream.Position = 0;
        var error = Assert.ThrowsExactly<ModelFormatException>(() => ModelFile.Read(stream, "language-model"));
        StringAssert.Contains(error.Message, "'sequence-classifier' model, not a 'language-model'");
    }
}
