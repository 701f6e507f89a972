using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized.Tests;

[TestClass]
public sealed class GateKurtosisRecorderTests
{
    [TestMethod]
    [DataRow(RecurrentCellKind.Lstm, RecurrentNormalization.None, false)]
    [DataRow(RecurrentCellKind.Lstm, RecurrentNormalization.Weight, false)]
    [DataRow(RecurrentCellKind.Lstm, RecurrentNormalization.Layer, false)]
    [DataRow(RecurrentCellKind.Lstm, RecurrentNormalization.BatchPerStep, true)]
    [DataRow(RecurrentCellKind.Gru, RecurrentNormalization.None, false)]
    [DataRow(RecurrentCellKind.Gru, RecurrentNormalization.Layer, true)]
    [DataRow(RecurrentCellKind.Gru, RecurrentNormalization.BatchShared, false)]
    public void RecordedGatesRebuildTheLayersOutputExactly(RecurrentCellKind cell, RecurrentNormalization normalization, bool quantizedActivations)
    {
        torch.manual_seed(11);
        var options = RecurrentTestSupport.Options(cell, hidden: 12, layers: 2, normalization);
        using var stack = new QuantizedRecurrentStack("s", 5, options, RecurrentTestSupport.Sign,
            quantizedActivations ? RecurrentTestSupport.Quarter : RecurrentTestSupport.Float);
        stack.eval();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var input = torch.randn(7, 3, 5);
        var (expected, _) = stack.Forward(input, null);
        using (var recorder = new GateActivationRecorder(stack.Layers))
        {
            var (output, state) = stack.Forward(input, null);
            stack.Forward(input, state); // a second window from a carried state
            Assert.AreEqual(0f, (output - expected).abs().max().item<float>(), "recording does not change the output");
            Assert.AreEqual(4, recorder.Forwards, "2 layers x 2 windows");
            Assert.IsTrue(recorder.MaxReconstructionError < 1e-5, $"gates rebuild h: max error {recorder.MaxReconstructionError}");
            var stats = recorder.Statistics();
            int gates = cell == RecurrentCellKind.Lstm ? 5 : 3;
            Assert.AreEqual(2 * gates, stats.Count);
            Assert.IsTrue(stats.All(g => g.Count == 2 * 7 * 3 * 12), "every value of both windows");
            Assert.IsTrue(stats.All(g => double.IsFinite(g.PreActivationKurtosis) && g.PreActivationKurtosis >= 1 - 1e-9 && g.PostActivationKurtosis >= 1 - 1e-9));
            CollectionAssert.AreEqual(
                cell == RecurrentCellKind.Lstm ? new[] { "input", "forget", "candidate", "output", "cell" } : new[] { "reset", "update", "candidate" },
                stats.Where(g => g.Layer == 1).Select(g => g.Gate).ToArray());
        }
        Assert.IsTrue(stack.Layers.All(l => l.ForwardObserver is null), "disposing unhooks");
    }

    [TestMethod]
    [DataRow(RecurrentCellKind.Lstm)]
    [DataRow(RecurrentCellKind.Gru)]
    public void GatesRebuildTheOutputUnderADynamicStepActivationQuantizer(RecurrentCellKind cell)
    {
        // uniform3's step is max |x| / 3 of each step's tensor: the rebuild must quantize step by step, as the cell does.
        torch.manual_seed(13);
        using var stack = new QuantizedRecurrentStack("s", 5, RecurrentTestSupport.Options(cell, hidden: 8), RecurrentTestSupport.Float,
            () => QuantizerFactory.Create(new QuantizerOptions { Kind = QuantizerKind.Uniform, Bits = 3 }));
        stack.eval();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        using var recorder = new GateActivationRecorder(stack.Layers);
        stack.Forward(torch.randn(9, 4, 5) * 3, null);
        Assert.IsTrue(recorder.MaxReconstructionError < 1e-5, $"max error {recorder.MaxReconstructionError}");
    }

    [TestMethod]
    public void PostActivationHistogramsCountEveryValueInTheBinOfItsRange()
    {
        torch.manual_seed(12);
        using var stack = new QuantizedRecurrentStack("s", 5, RecurrentTestSupport.Options(RecurrentCellKind.Lstm, hidden: 6));
        stack.eval();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var input = torch.randn(7, 3, 5) * 2;
        IReadOnlyList<GateStatistics> stats;
        Tensor output;
        using (var recorder = new GateActivationRecorder(stack.Layers))
        {
            output = stack.Forward(input, null).Output;
            stats = recorder.Statistics();
        }

        // The gates by hand from the layer's own outputs (h_{t-1}); counts binned here, 20 bins over [0, 1] or [-1, 1].
        var layer = stack.Layers[0];
        var previous = torch.cat(new[] { torch.zeros(1, 3, 6), output.narrow(0, 0, 6) }, 0);
        var gates = (input.matmul(layer.WeightIh.t()) + layer.BiasIh + previous.matmul(layer.WeightHh.t()) + layer.BiasHh).chunk(4, 2);
        var (i, f, g) = (gates[0].sigmoid(), gates[1].sigmoid(), gates[2].tanh());
        var c = torch.zeros(3, 6);
        var cells = new List<Tensor>();
        for (int t = 0; t < 7; t++)
        {
            c = f[t] * c + i[t] * g[t];
            cells.Add(c.tanh());
        }
        var byHand = new[] { (i, 0.0), (f, 0.0), (g, -1.0), (gates[3].sigmoid(), 0.0), (torch.stack(cells), -1.0) };
        for (int k = 0; k < byHand.Length; k++)
        {
            var (values, low) = byHand[k];
            var counts = new long[20];
            foreach (var v in values.to_type(ScalarType.Float64).data<double>().ToArray())
                counts[Math.Min(19, (int)((v - low) / ((1 - low) / 20)))]++;
            var histogram = stats[k].PostActivationHistogram;
            Assert.AreEqual(low, histogram.Low, stats[k].Gate);
            Assert.AreEqual(1.0, histogram.High, stats[k].Gate);
            Assert.AreEqual(7 * 3 * 6L, histogram.Counts.Sum(), $"{stats[k].Gate}: every value counted");
            for (int b = 0; b < 20; b++)
                Assert.IsLessThanOrEqualTo(1L, Math.Abs(counts[b] - histogram.Counts[b]), $"{stats[k].Gate}, bin {b}: {counts[b]} by hand, {histogram.Counts[b]} recorded (1 allowed for a value on a bin edge)");
            Assert.AreEqual(counts.Max() / 126.0, histogram.Shares().Max(), 1.0 / 126, stats[k].Gate);
        }
    }

    [TestMethod]
    public void TrainingForwardsAreNotRecordedAndLayersCannotBeObservedTwice()
    {
        using var stack = new QuantizedRecurrentStack("s", 4, RecurrentTestSupport.Options(RecurrentCellKind.Lstm, 6));
        using var recorder = new GateActivationRecorder(stack.Layers);
        stack.train();
        using (var scope = NewDisposeScope()) stack.Forward(torch.randn(3, 2, 4), null);
        Assert.AreEqual(0, recorder.Forwards);
        Assert.ThrowsExactly<InvalidOperationException>(() => new GateActivationRecorder(stack.Layers));
    }
}
