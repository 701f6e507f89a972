using System.Security.Cryptography;
using System.Text;
using Microsoft.ML;

namespace Microsoft.ML.Quantized.Tests.MLNet;

/// <summary>ML.NET model files whose quantized components come from another library version, or that are damaged, get clear errors.</summary>
[TestClass]
public sealed class ModelCompatibilityTests
{
    private static byte[] _languageModel = null!, _binary = null!;

    [ClassInitialize]
    public static void Fit(TestContext _)
    {
        var ml = new MLContext(seed: 3);
        _languageModel = Save(ml, QuantizedLanguageModelTransformerTests.Pipeline(ml, TinyText.Options(epochs: 1)), ml.Data.LoadFromEnumerable(TinyText.Rows(24)));
        _binary = Save(ml, QuantizedSequenceTrainerTests.BinaryPipeline(ml, QuantizedSequenceTrainerTests.Options(epochs: 1)),
            ml.Data.LoadFromEnumerable(TextData.Rows(32, seed: 1)));
    }

    private static byte[] Save(MLContext ml, IEstimator<ITransformer> pipeline, IDataView data)
    {
        var model = pipeline.Fit(data);
        using var stream = new MemoryStream();
        ml.Model.Save(model, data.Schema, stream);
        QuantizedSequenceTrainerTests.DisposeModel(model);
        return stream.ToArray();
    }

    private static string LoadError(byte[] zip)
    {
        var e = Assert.Throws<Exception>(() => QuantizedSequenceTrainerTests.DisposeModel(new MLContext().Model.Load(new MemoryStream(zip), out _)));
        return QuantizedLanguageModelTransformerTests.Flatten(e);
    }

    /// <summary>Sets the component version ML.NET stores after the 8-byte model signature (written, then readable).</summary>
    private static byte[] WithComponentVersion(byte[] zip, string signature, uint version)
    {
        bool found = false;
        var result = ModelZip.Rewrite(zip, (_, data) =>
        {
            int at = data.AsSpan().IndexOf(Encoding.ASCII.GetBytes(signature));
            if (at < 0) return data;
            found = true;
            BitConverter.TryWriteBytes(data.AsSpan(at + 8), version);
            BitConverter.TryWriteBytes(data.AsSpan(at + 12), version);
            return data;
        });
        Assert.IsTrue(found, $"no entry holds the signature {signature}");
        return result;
    }

    [TestMethod]
    public void A_component_saved_in_a_newer_format_names_the_versions_and_what_to_do()
    {
        var error = LoadError(WithComponentVersion(_languageModel, "QRNNLMTF", 0x00010005));
        StringAssert.Contains(error, $"The Quantized Recurrent Language Model Transformer in this ML.NET model was saved by Microsoft.ML.Quantized {ModelFile.LibraryVersion} in format 0x00010005, newer than");
        StringAssert.Contains(error, $"this Microsoft.ML.Quantized ({ModelFile.LibraryVersion}) reads, 0x00010001 to 0x00010004");
        StringAssert.Contains(error, "Load the model with Microsoft.ML.Quantized");
    }

    [TestMethod]
    public void A_component_saved_in_an_older_format_names_the_versions_and_what_to_do()
    {
        var error = LoadError(WithComponentVersion(_binary, "QSEQBINC", 0x00010000));
        StringAssert.Contains(error, "The Quantized Sequence Binary Classifier in this ML.NET model was saved by Microsoft.ML.Quantized");
        StringAssert.Contains(error, "in format 0x00010000, older than the formats");
        StringAssert.Contains(error, "retrain it and save it with this version");
    }

    [TestMethod]
    public void A_packed_model_stream_of_another_format_version_names_both_versions()
    {
        // The packed classifier as a future library writing the next format version would store it: magic "QPSC", then the version byte.
        const int next = PackedSequenceClassifierNetwork.FormatVersion + 1;
        var zip = ModelZip.Rewrite(_binary, (name, data) =>
        {
            if (!name.EndsWith("PackedSequenceClassifier.bin", StringComparison.Ordinal)) return data;
            Assert.AreEqual("QPSC", Encoding.ASCII.GetString(data, 0, 4));
            data[4] = next;
            return data;
        });
        var error = LoadError(zip);
        StringAssert.Contains(error, "The quantized sequence classifier inside this ML.NET model could not be read");
        StringAssert.Contains(error, $"has format version {next}, newer than version {PackedSequenceClassifierNetwork.FormatVersion}, which this library reads");
    }

    [TestMethod]
    public void Another_library_version_that_wrote_the_same_formats_loads()
    {
        var current = Encoding.Unicode.GetBytes($"Microsoft.ML.Quantized.Runtime, Version={ModelFile.LibraryVersion}");
        var other = Encoding.Unicode.GetBytes("Microsoft.ML.Quantized.Runtime, Version=9.9.9.9");
        Assert.HasCount(current.Length, other);
        bool found = false;
        var zip = ModelZip.Rewrite(_binary, (_, data) =>
        {
            int at = data.AsSpan().IndexOf(current);
            if (at >= 0) other.CopyTo(data, at);
            found |= at >= 0;
            return data;
        });
        Assert.IsTrue(found, "the component's assembly name was not found in the model file");
        QuantizedSequenceTrainerTests.DisposeModel(new MLContext().Model.Load(new MemoryStream(zip), out _));
    }

    [TestMethod]
    public void A_truncated_or_foreign_file_is_a_clear_error()
    {
        foreach (int length in new[] { 10, 1000, _binary.Length / 2, _binary.Length - 30 })
            StringAssert.Contains(LoadError(_binary[..length]), "Failed to open a zip archive", $"cut at {length}");
        StringAssert.Contains(LoadError("not a model"u8.ToArray()), "Failed to open a zip archive");
    }
}
