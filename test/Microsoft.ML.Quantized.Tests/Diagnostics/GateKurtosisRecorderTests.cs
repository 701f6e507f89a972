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
