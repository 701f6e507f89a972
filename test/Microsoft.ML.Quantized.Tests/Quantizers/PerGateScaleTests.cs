using TorchSharp;
using static Microsoft.ML.Quantized.Tests.Quantizers.QuantizerTestUtil;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized.Tests.Quantizers;

/// <summary>
/// Per-gate scales (<see cref="QuantizerOptions.PerGateScale"/>, Hou et al. 2019's code): one scale and threshold per block
/// of rows, checked on hand-computed 4 x 2 matrices split into 2 gates, and in the LSTM and GRU cells against each gate's
/// block quantized on its own by the per-tensor rule.
/// </summary>
[TestClass]
public sealed class PerGateScaleTests
{
    // Gate 0: rows 0-1 (|w| 0.1, 0.9, 0.5, 0.2; mean 0.425). Gate 1: rows 2-3 (|w| 1.2, 0, 0.6, 0.3; mean 0.525).
    private static Tensor W() => Matrix(4, 2, 0.1f, -0.9f, 0.5f, -0.2f, 1.2f, 0f, 0.6f, -0.3f);

    [TestMethod]
    public void TernaryWeightNet_PerGate_ThresholdAndScaleOfEachBlock()
    {
        using var scope = torch.NewDisposeScope();
        // Gate 0: delta = 0.7 * 0.425 = 0.2975, kept 0.9, 0.5 -> alpha 0.7. Gate 1: delta = 0.3675, kept 1.2, 0.6 -> alpha 0.9.
        var quantizer = new TernaryWeightNetQuantizer(gates: 2);
        AreClose(new float[] { 0, -0.7f, 0.7f, 0, 0.9f, 0, 0.9f, 0 }, quantizer.forward(W()));
        // Per tensor, for contrast: mean 0.475, delta 0.3325, kept 0.9, 0.5, 1.2, 0.6 -> alpha 0.8.
        AreClose(new float[] { 0, -0.8f, 0.8f, 0, 0.8f, 0, 0.8f, 0 }, new TernaryWeightNetQuantizer().forward(W()));
        var encoded = quantizer.Encode(W());
        Assert.IsTrue(encoded.PerRow, "per-gate scales are stored on each row of the gate");
        AreClose(new float[] { 0.7f, 0.7f, 0.9f, 0.9f }, encoded.Scales);
        Assert.AreEqual("twn-gate", quantizer.RegistryName);
    }

    [TestMethod]
    public void BinaryWeightNet_PerGate_MeanMagnitudeOfEachBlock()
    {
        using var scope = torch.NewDisposeScope();
        var quantizer = new BinaryWeightNetQuantizer(gates: 2);
        // sign(0) = +1.
        AreClose(new float[] { 0.425f, -0.425f, 0.425f, -0.425f, 0.525f, 0.525f, 0.525f, -0.525f }, quantizer.forward(W()));
        var encoded = quantizer.Encode(W());
        AreClose(new float[] { 0.425f, 0.425f, 0.525f, 0.525f }, encoded.Scales);
        Assert.AreEqual("bwn-gate", quantizer.RegistryName);
    }

    [TestMethod]
    public void ThresholdTernary_PerGate_ThetaTimesEachBlocksMeanMagnitude()
    {
        using var scope = torch.NewDisposeScope();
        // theta 0.3. Gate 0: delta 0.1275, kept 0.9, 0.5, 0.2 -> alpha 1.6 / 3. Gate 1: delta 0.1575, kept 1.2, 0.6, 0.3 -> alpha 0.7.
        var quantizer = new ThresholdTernaryQuantizer(theta: 0.3, gates: 2);
        const float a = 1.6f / 3;
        AreClose(new float[] { 0, -a, a, -a, 0.7f, 0, 0.7f, -0.7f }, quantizer.forward(W()));
        Assert.AreEqual("ttq-theta0.3-gate", quantizer.RegistryName);
    }

    [TestMethod]
    public void PerGate_RowsNotDivisibleIntoTheGates_NamesTheShape()
    {
        using var scope = torch.NewDisposeScope();
        var e = Assert.ThrowsExactly<ArgumentException>(() => new TernaryWeightNetQuantizer(gates: 3).forward(W()));
        StringAssert.Contains(e.Message, "3 equal gate blocks");
        StringAssert.Contains(e.Message, "[4, 2]");
    }

    [TestMethod]
    public void Registry_GateFlag_RoundTripsAndIsRefusedWhereItCannotApply()
    {
        var options = QuantizerRegistry.Parse("twn-gate");
        Assert.IsTrue(options.PerGateScale);
        Assert.IsFalse(options.PerRowScale);
        Assert.AreEqual("twn-gate", options.ToString());
        Assert.AreEqual("bwn-gate@0.9", QuantizerRegistry.Parse("bwn-gate@0.9").ToString());
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => QuantizerRegistry.Parse("bc-gate")).Message, "PerGateScale");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => QuantizerRegistry.Parse("uniform4-gate")).Message, "PerGateScale");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => QuantizerRegistry.Parse("twn-gate-row")).Message, "PerRowScale");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => Microsoft.ML.Quantized.Sweep.QuantizerChoice.Parse("twn-gate")).Message, "'-gate'");
    }

    [TestMethod]
    public void LstmAndGruCells_QuantizeEachGateBlockOnItsOwn()
    {
        foreach (var (cell, gates) in new[] { (RecurrentCellKind.Lstm, 4), (RecurrentCellKind.Gru, 3) })
            foreach (var name in new[] { "twn", "bwn", "ttq-theta0.5" })
            {
                using var scope = torch.NewDisposeScope();
                torch.manual_seed(11);
                var options = new QuantizedRecurrentOptions { Cell = cell, HiddenSize = 5, WeightQuantizer = QuantizerRegistry.Parse(name + "-gate") };
                using var stack = new QuantizedRecurrentStack("stack", 3, options);
                var layer = stack.Layers[0];
                var (wih, whh) = layer.EffectiveWeights();
                foreach (var (effective, weight) in new[] { (wih, (Tensor)layer.WeightIh), (whh, layer.WeightHh) })
                {
                    // Independent computation: each block of 5 rows through the per-tensor rule.
                    var perTensor = Create(name);
                    var expected = torch.cat(weight.detach().chunk(gates, 0).Select(block => perTensor.forward(block)).ToArray(), 0);
                    AreClose(Values(expected), effective, 1e-6, $"{cell} {name}-gate");
                    var wholeTensor = Values(perTensor.forward(weight.detach()));
                    Assert.IsFalse(wholeTensor.SequenceEqual(Values(effective)), $"{cell} {name}-gate differs from one scale per tensor");
                }
            }
    }
}
