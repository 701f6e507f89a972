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

    [TestMethod]
    public void AHeaderWithASettingThisLibraryDoesNotKnowIsRefused_NotDropped()
    {
        var text = TinyCorpus.Text(40);
        using var model = QuantizedLanguageModel.Train(Vocabulary.FromCharacters(text), text, null, TinyCorpus.Model(QuantizerKind.Uniform),
            QuantizedLanguageModelTests.WithSteps(TinyCorpus.Training(1), 1));
        using var saved = new MemoryStream();
        model.Save(saved);
        saved.Position = 0;
        var (header, payload) = ModelFile.Read(saved, "language-model");
        StringAssert.Contains(header, "\"WeightQuantizer\":{");

        // What a newer library with one more quantizer setting would write.
        using var newer = new MemoryStream();
        ModelFile.Write(newer, "language-model", header.Replace("\"WeightQuantizer\":{", "\"WeightQuantizer\":{\"FutureSetting\":true,"), payload);
        newer.Position = 0;
        var error = Assert.ThrowsExactly<ModelFormatException>(() => QuantizedLanguageModel.Load(newer));
        StringAssert.Contains(error.Message, "'language-model' model header cannot be read");
        StringAssert.Contains(error.Message, "FutureSetting");
        StringAssert.Contains(error.Message, "load the model with that version");

        saved.Position = 0;
        using var loaded = QuantizedLanguageModel.Load(saved);
        Assert.AreEqual("uniform4", loaded.Options.Recurrent.WeightQuantizer.ToString());
    }
}
