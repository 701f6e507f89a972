using TorchSharp;
using static Microsoft.ML.Quantized.Tests.Quantizers.QuantizerTestUtil;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized.Tests.Quantizers;

[TestClass]
public sealed class EncodeRoundTripTests
{
    private static readonly string[] Names =
    {
        "none", "bc", "sbc", "sbc-real", "bwn", "bwn-row", "bwn@0.9", "twn", "twn-row", "twn@1.1", "ttq", "ttq-row", "ttq-theta0.3", "ttq-max", "ttq-max-theta0.1-row", "zttq",
        "alt1", "alt2", "alt3", "alt4", "alt2-tensor", "alt3-tensor", "alt2@1.05",
        "uniform2", "uniform3", "uniform4", "uniform5", "uniform6", "uniform7", "uniform8", "uniform4-row",
        "uniform4-sr", "uniform3-pow2", "uniform3-pow2-row", "uniform4-lsq", "uniform4-lsq-row", "uniform4@1.05",
        "uniform4-sr-row@0.95", "uniform3-mse", "uniform2-mse-row", "uniform4-pow2-mse", "uniform4-lsq-mse", "uniform3-mse@1.05", "btq",
    };

    [TestMethod]
    public void DecodeAll_EqualsEvalForward_Exactly_ForEveryQuantizer()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(2024);
        var w = torch.randn(6, 10) * 0.4;
        foreach (var name in Names)
        {
            var quantizer = Create(name);
            quantizer.eval();
            var expected = Values(quantizer.forward(w));
            var encoded = quantizer.Encode(w);
            Assert.AreEqual(6, encoded.Rows, name);
            Assert.AreEqual(10, encoded.Columns, name);
            Assert.AreEqual(quantizer.Bits, encoded.Bits, name);
            Assert.AreEqual(name.Contains("-row") || (name.StartsWith("alt", StringComparison.Ordinal) && !name.Contains("-tensor")), encoded.PerRow, name);
            CollectionAssert.AreEqual(expected, encoded.DecodeAll(), $"{name}: decoded weights must equal the eval forward bit for bit");
            Assert.AreEqual(name, quantizer.RegistryName, "instance name");
            foreach (var code in encoded.Codes)
                Assert.IsTrue(code >= 0 && code < 1 << encoded.Bits, $"{name}: code {code} fits {encoded.Bits} bits");
        }
    }

    [TestMethod]
    public void TrainingForward_OfDeterministicQuantizers_HasTheEncodedValues()
    {
        // The straight-through expression adds an exact zero: training values equal the stored ones.
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(77);
        var w = (torch.randn(5, 7) * 0.5).requires_grad_(true);
        foreach (var name in new[] { "bc", "bwn-row", "twn", "ttq-row", "alt3", "uniform4", "uniform3-pow2-row", "uniform4-lsq", "uniform3-mse-row" })
        {
            var quantizer = Create(name);
            quantizer.train();
            var q = quantizer.forward(w);
            Assert.IsTrue(q.requires_grad, name);
            CollectionAssert.AreEqual(quantizer.Encode(w).DecodeAll(), Values(q), name);
        }
    }

    [TestMethod]
    public void Encode_RejectsOneDimensionalTensors()
    {
        using var scope = torch.NewDisposeScope();
        foreach (var name in new[] { "bc", "twn", "alt2", "uniform4", "btq" })
        {
            var e = Assert.ThrowsExactly<ArgumentException>(() => Create(name).Encode(torch.ones(4)));
            StringAssert.Contains(e.Message, "2-D");
        }
    }

    [TestMethod]
    public void Forward_KeepsShape_AndNoGradPathIsDetached()
    {
        using var scope = torch.NewDisposeScope();
        var w = torch.randn(3, 4).requires_grad_(true);
        foreach (var name in Names)
        {
            var quantizer = Create(name);
            using (torch.no_grad())
            {
                var q = quantizer.forward(w);
                CollectionAssert.AreEqual(w.shape, q.shape, name);
                if (!quantizer.IsIdentity) Assert.IsFalse(q.requires_grad, name); // the identity returns an alias
            }
        }
    }
}
