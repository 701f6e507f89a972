using TorchSharp;
using static Microsoft.ML.Quantized.Tests.RecurrentTestSupport;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized.Tests;

[TestClass]
public sealed class RecurrentCellTests
{
    private const int In = 5, Hidden = 6, Batch = 3, Time = 4;

    [TestMethod]
    [DataRow(RecurrentCellKind.Lstm)]
    [DataRow(RecurrentCellKind.Gru)]
    public void ConvertingTheCellKeepsItsWeightsAndRunningStatistics(RecurrentCellKind kind)
    {
        // Module.to() replaces each converted parameter and buffer; the cell's weights and batch norm's running statistics must
        // be the converted ones afterwards (they were held in fields of other names, which kept the disposed originals).
        using var scope = NewDisposeScope();
        manual_seed(3);
        var options = Options(kind, Hidden, normalization: RecurrentNormalization.BatchPerStep);
        using QuantizedRecurrentCell cell = kind == RecurrentCellKind.Lstm ? new QuantizedLstmCell("lstm", In, options) : new QuantizedGruCell("gru", In, options);
        var before = cell.WeightHh.detach().clone();
        cell.to(ScalarType.Float64);

        var registered = cell.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, parameter) in new[] { ("weight_ih", cell.WeightIh), ("weight_hh", cell.WeightHh), ("bias_ih", cell.BiasIh), ("bias_hh", cell.BiasHh) })
        {
            Assert.AreEqual(ScalarType.Float64, parameter.dtype, name);
            Assert.AreSame(registered[name], parameter, name);
        }
        Assert.AreEqual(0.0, (before.to(ScalarType.Float64) - cell.WeightHh.detach()).abs().max().item<double>(), "the converted weight holds the same values");
        Assert.AreEqual(ScalarType.Float64, cell.HiddenBatchNorm!.RunningMean.dtype);
        Assert.AreEqual(ScalarType.Float64, cell.HiddenBatchNorm.RunningVar.dtype);

        cell.train();
        var (output, _, _) = cell.Forward(randn(Time, Batch, In, dtype: ScalarType.Float64), zeros(Batch, Hidden, dtype: ScalarType.Float64),
            cell.HasCellState ? zeros(Batch, Hidden, dtype: ScalarType.Float64) : null);
        output.sum().backward();
        Assert.IsNotNull(cell.WeightHh.grad, "the converted weight is the one the forward used");
        Assert.IsFalse(cell.HiddenBatchNorm.RunningMean.eq(0).all().item<bool>(), "the forward updated the converted running means");
    }

    [TestMethod]
    public void LstmLoopMatchesReferenceWrittenWithTorchOps()
    {
        manual_seed(1);
        using var scope = NewDisposeScope();
        using var cell = new QuantizedLstmCell("lstm", In, Options(RecurrentCellKind.Lstm, Hidden), Float, Float) { ForceCellLoop = true };
        var x = randn(Time, Batch, In);
        var h0 = randn(Batch, Hidden);
        var c0 = randn(Batch, Hidden);

        var (output, h, c) = cell.Forward(x, h0, c0);

        Tensor rh = h0, rc = c0;
        var outputs = new List<Tensor>();
        for (int t = 0; t < Time; t++)
        {
            var gates = x[t].mm(cell.WeightIh.t()) + cell.BiasIh + rh.mm(cell.WeightHh.t()) + cell.BiasHh;
            var i = gates.narrow(1, 0, Hidden).sigmoid();
            var f = gates.narrow(1, Hidden, Hidden).sigmoid();
            var g = gates.narrow(1, 2 * Hidden, Hidden).tanh();
            var o = gates.narrow(1, 3 * Hidden, Hidden).sigmoid();
            rc = f * rc + i * g;
            rh = o * rc.tanh();
            outputs.Add(rh);
        }
        AssertClose(stack(outputs, 0), output, 1e-5, "output");
        AssertClose(rh, h, 1e-5, "h");
        AssertClose(rc, c!, 1e-5, "c");
        Assert.IsFalse(cell.UsesFusedKernel);
    }

    /// <summary>The activation quantizer (here: rounding to quarters) on exactly the activations named, the cell state included.</summary>
    [TestMethod]
    [DataRow(RecurrentActivations.CellState)]
    [DataRow(RecurrentActivations.Gates | RecurrentActivations.CellState)]
    [DataRow(RecurrentActivations.Hidden)]
    [DataRow(RecurrentActivations.Gates | RecurrentActivations.Hidden)]
    public void LstmQuantizesTheNamedActivationsOnly(RecurrentActivations quantized)
    {
        manual_seed(3);
        using var scope = NewDisposeScope();
        var options = Options(RecurrentCellKind.Lstm, Hidden);
        options.QuantizedActivations = quantized;
        using var cell = new QuantizedLstmCell("lstm", In, options, Float, Quarter);
        var x = randn(Time, Batch, In);
        var h0 = randn(Batch, Hidden);
        var c0 = randn(Batch, Hidden);

        var (output, h, c) = cell.Forward(x, h0, c0);

        Tensor Q(Tensor v, RecurrentActivations kind) => quantized.HasFlag(kind) ? (v * 4).round() / 4 : v;
        Tensor rh = h0, rc = c0;
        var outputs = new List<Tensor>();
        for (int t = 0; t < Time; t++)
        {
            var gates = x[t].mm(cell.WeightIh.t()) + cell.BiasIh + rh.mm(cell.WeightHh.t()) + cell.BiasHh;
            var i = Q(gates.narrow(1, 0, Hidden).sigmoid(), RecurrentActivations.Gates);
            var f = Q(gates.narrow(1, Hidden, Hidden).sigmoid(), RecurrentActivations.Gates);
            var g = Q(gates.narrow(1, 2 * Hidden, Hidden).tanh(), RecurrentActivations.Gates);
            var o = Q(gates.narrow(1, 3 * Hidden, Hidden).sigmoid(), RecurrentActivations.Gates);
            rc = Q(f * rc + i * g, RecurrentActivations.CellState);
            rh = Q(o * rc.tanh(), RecurrentActivations.Hidden);
            outputs.Add(rh);
        }
        AssertClose(stack(outputs, 0), output, 1e-5, "output");
        AssertClose(rc, c!, 1e-5, "c");
        Assert.AreEqual(quantized.HasFlag(RecurrentActivations.CellState), ((c! * 4).round() / 4 == c!).all().item<bool>(), "c on the quarter grid exactly when named");
        Assert.AreEqual(quantized.HasFlag(RecurrentActivations.Hidden), ((h * 4).round() / 4 == h).all().item<bool>(), "h on the quarter grid exactly when named");
        CollectionAssert.AreEqual(new[] { "cell_state_quantizer", "forget_gate_quantizer", "hidden_quantizer" },
            cell.named_children().Select(m => m.name).Where(n => n is "cell_state_quantizer" or "forget_gate_quantizer" or "hidden_quantizer").Order().ToArray());
    }

    [TestMethod]
    public void GruLoopMatchesReferenceWrittenWithTorchOps()
    {
        manual_seed(2);
        using var scope = NewDisposeScope();
        using var cell = new QuantizedGruCell("gru", In, Options(RecurrentCellKind.Gru, Hidden), Float, Float) { ForceCellLoop = true };
        var x = randn(Time, Batch, In);
        var h0 = randn(Batch, Hidden);

        var (output, h, c) = cell.Forward(x, h0, null);

        Tensor rh = h0;
        var outputs = new List<Tensor>();
        for (int t = 0; t < Time; t++)
        {
            var gi = x[t].mm(cell.WeightIh.t()) + cell.BiasIh;
            var gh = rh.mm(cell.WeightHh.t()) + cell.BiasHh;
            var r = (gi.narrow(1, 0, Hidden) + gh.narrow(1, 0, Hidden)).sigmoid();
            var z = (gi.narrow(1, Hidden, Hidden) + gh.narrow(1, Hidden, Hidden)).sigmoid();
            var n = (gi.narrow(1, 2 * Hidden, Hidden) + r * gh.narrow(1, 2 * Hidden, Hidden)).tanh();
            rh = (1 - z) * n + z * rh;
            outputs.Add(rh);
        }
        AssertClose(stack(outputs, 0), output, 1e-5, "output");
        AssertClose(rh, h, 1e-5, "h");
        Assert.IsNull(c);
    }

    [TestMethod]
    [DataRow(false)]
    [DataRow(true)]
    public void LstmStackMatchesTorchLstmWithCopiedWeights(bool forceLoop)
    {
        manual_seed(3);
        using var scope = NewDisposeScope();
        using var net = new QuantizedRecurrentStack("stack", In, Options(RecurrentCellKind.Lstm, Hidden, layers: 2), Float, Float) { ForceCellLoop = forceLoop };
        Assert.AreEqual(!forceLoop, net.UsesFusedKernel);
        using var reference = nn.LSTM(In, Hidden, numLayers: 2);
        CopyWeights(net, reference.named_parameters().ToDictionary(p => p.name, p => p.parameter));
        var x = randn(Time, Batch, In);
        var state = new RecurrentState(randn(2, Batch, Hidden), randn(2, Batch, Hidden));

        var (output, final) = net.Forward(x, state);
        var (expected, eh, ec) = reference.forward(x, (state.H, state.C!));

        AssertClose(expected, output, 1e-5, "output");
        AssertClose(eh, final.H, 1e-5, "h");
        AssertClose(ec, final.C!, 1e-5, "c");
    }

    [TestMethod]
    [DataRow(false)]
    [DataRow(true)]
    public void GruStackMatchesTorchGruWithCopiedWeights(bool forceLoop)
    {
        manual_seed(4);
        using var scope = NewDisposeScope();
        using var net = new QuantizedRecurrentStack("stack", In, Options(RecurrentCellKind.Gru, Hidden, layers: 2), Float, Float) { ForceCellLoop = forceLoop, ForceFusedKernel = !forceLoop };
        Assert.AreEqual(!forceLoop, net.UsesFusedKernel);
        using var reference = nn.GRU(In, Hidden, numLayers: 2);
        CopyWeights(net, reference.named_parameters().ToDictionary(p => p.name, p => p.parameter));
        var x = randn(Time, Batch, In);
        var h0 = randn(2, Batch, Hidden);

        var (output, final) = net.Forward(x, new RecurrentState(h0, null));
        var (expected, eh) = reference.forward(x, h0);

        AssertClose(expected, output, 1e-5, "output");
        AssertClose(eh, final.H, 1e-5, "h");
        Assert.IsNull(final.C);
    }

    [TestMethod]
    [DataRow(true)]
    [DataRow(false)]
    public void WeightOnlyGruRunsItsSequenceFunctionWhereTheManagedProductsRun(bool managed)
    {
        // Where the managed products run, the GRU's sequence function outruns libtorch's fused GRU; the LSTM's fused kernel
        // stays the faster, and elsewhere both cells keep theirs.
        bool machineDefault = StepProduct.Managed;
        StepProduct.Managed = managed;
        try
        {
            foreach (var normalization in new[] { RecurrentNormalization.None, RecurrentNormalization.Weight })
            {
                using var gru = new QuantizedRecurrentStack("gru", In, Options(RecurrentCellKind.Gru, Hidden, layers: 2, normalization: normalization), Sign, Float);
                using var lstm = new QuantizedRecurrentStack("lstm", In, Options(RecurrentCellKind.Lstm, Hidden, layers: 2, normalization: normalization), Sign, Float);
                Assert.AreEqual(!managed, gru.UsesFusedKernel, $"GRU, {normalization}");
                Assert.IsTrue(lstm.UsesFusedKernel, $"LSTM, {normalization}");
                gru.ForceFusedKernel = true;
                Assert.IsTrue(gru.UsesFusedKernel, $"GRU, {normalization}, forced");
            }
        }
        finally { StepProduct.Managed = machineDefault; }
    }

    [TestMethod]
    [DataRow(RecurrentCellKind.Lstm)]
    [DataRow(RecurrentCellKind.Gru)]
    public void FusedAndLoopAgreeInEvaluationUnderNoGrad(RecurrentCellKind kind)
    {
        // libtorch's CPU LSTM under no_grad takes a oneDNN inference path that was 0.19 off on an AVX-512 machine.
        manual_seed(11);
        using var scope = NewDisposeScope();
        using var net = new QuantizedRecurrentStack("stack", In, Options(kind, Hidden, layers: 2), Sign, Float) { ForceFusedKernel = true };
        net.eval();
        using var noGrad = no_grad();
        var x = randn(Time, Batch, In);
        var state = new RecurrentState(randn(2, Batch, Hidden), kind == RecurrentCellKind.Lstm ? randn(2, Batch, Hidden) : null);
        Assert.IsTrue(net.UsesFusedKernel);
        var (fused, fusedState) = net.Forward(x, state);
        net.ForceCellLoop = true;
        var (loop, loopState) = net.Forward(x, state);
        AssertClose(loop, fused, 1e-5, "output");
        AssertClose(loopState.H, fusedState.H, 1e-5, "h");
        if (kind == RecurrentCellKind.Lstm) AssertClose(loopState.C!, fusedState.C!, 1e-5, "c");
    }

    [TestMethod]
    [DataRow(RecurrentCellKind.Lstm, RecurrentNormalization.None)]
    [DataRow(RecurrentCellKind.Gru, RecurrentNormalization.None)]
    [DataRow(RecurrentCellKind.Lstm, RecurrentNormalization.Weight)]
    [DataRow(RecurrentCellKind.Gru, RecurrentNormalization.Weight)]
    public void FusedAndLoopGiveSameOutputsAndGradientsWithQuantizedWeights(RecurrentCellKind kind, RecurrentNormalization normalization)
    {
        manual_seed(5);
        using var scope = NewDisposeScope();
        using var net = new QuantizedRecurrentStack("stack", In, Options(kind, Hidden, layers: 2, normalization: normalization), Sign, Float) { ForceFusedKernel = true };
        Assert.IsTrue(net.UsesFusedKernel);
        var x = randn(Time, Batch, In);
        var weights = randn(Time, Batch, Hidden);

        var (fusedOut, fusedGrads) = RunWithGradients(net, x, weights);
        net.ForceCellLoop = true;
        Assert.IsFalse(net.UsesFusedKernel);
        var (loopOut, loopGrads) = RunWithGradients(net, x, weights);

        AssertClose(fusedOut, loopOut, 1e-5, "output");
        Assert.AreEqual(fusedGrads.Count, loopGrads.Count);
        foreach (var (name, grad) in fusedGrads)
        {
            Assert.IsTrue(grad.abs().sum().item<float>() > 0, $"{name}: zero gradient");
            AssertClose(grad, loopGrads[name], 1e-4, $"gradient of {name}");
        }
    }

    [TestMethod]
    public void EachWeightIsQuantizedOncePerSequenceByItsOwnQuantizer()
    {
        manual_seed(6);
        using var scope = NewDisposeScope();
        foreach (bool forceLoop in new[] { false, true })
        {
            using var net = new QuantizedRecurrentStack("stack", In, Options(RecurrentCellKind.Lstm, Hidden, layers: 2), Sign, Float) { ForceCellLoop = forceLoop };
            net.Forward(randn(7, Batch, In), null);
            var quantizers = net.QuantizedWeights().Select(w => (TestSignQuantizer)w.Quantizer).ToList();
            Assert.AreEqual(4, quantizers.Distinct().Count(), "one quantizer instance per weight matrix");
            Assert.IsTrue(quantizers.All(q => q.Calls == 1), $"calls per sequence: {string.Join(", ", quantizers.Select(q => q.Calls))}");
        }
    }

    [TestMethod]
    public void QuantizedWeightsNameFloatShadowWeightsAndTheirQuantizers()
    {
        using var net = new QuantizedRecurrentStack("stack", In, Options(RecurrentCellKind.Gru, Hidden, layers: 2), Sign, Float);
        var list = net.QuantizedWeights().ToList();
        CollectionAssert.AreEqual(new[] { "layers.0.weight_ih", "layers.0.weight_hh", "layers.1.weight_ih", "layers.1.weight_hh" }, list.Select(w => w.Name).ToArray());
        var parameters = net.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, weight, quantizer) in list)
        {
            Assert.AreSame(parameters[name], weight, name);
            Assert.IsInstanceOfType<TestSignQuantizer>(quantizer);
        }
        CollectionAssert.AreEqual(new long[] { 3 * Hidden, In }, list[0].Weight.shape);
        CollectionAssert.AreEqual(new long[] { 3 * Hidden, Hidden }, list[3].Weight.shape);
        Assert.IsTrue(net.named_modules().Any(m => m.name == "layers.0.weight_ih_quantizer"), "quantizers are submodules");
    }

    [TestMethod]
    [DataRow(RecurrentCellKind.Lstm)]
    [DataRow(RecurrentCellKind.Gru)]
    public void SlopeBelowOneEqualsScaledPreActivations(RecurrentCellKind kind)
    {
        // sigma(a / lambda) with lambda = 1/2 is the plain cell with weights and biases doubled (the cell-state tanh
        // keeps slope 1, so h and c follow the same recursion).
        manual_seed(7);
        using var scope = NewDisposeScope();
        var sloped = Options(kind, Hidden);
        sloped.Slopes = new ActivationSlopes { InputGate = 0.5, ForgetGate = 0.5, OutputGate = 0.5, Candidate = 0.5 };
        using var steep = new QuantizedRecurrentStack("steep", In, sloped, Float, Float);
        using var plain = new QuantizedRecurrentStack("plain", In, Options(kind, Hidden), Float, Float);
        Assert.IsFalse(steep.UsesFusedKernel);
        using (no_grad())
        {
            foreach (var (name, p) in plain.named_parameters())
                p.copy_(steep.named_parameters().Single(q => q.name == name).parameter * 2);
        }
        var x = randn(Time, Batch, In);

        var (steepOut, _) = steep.Forward(x, null);
        var (plainOut, _) = plain.Forward(x, null);
        AssertClose(plainOut, steepOut, 1e-5, "lambda 0.5 vs doubled weights");

        using var standard = new QuantizedRecurrentStack("standard", In, Options(kind, Hidden), Float, Float);
        standard.load_state_dict(steep.state_dict());
        var (standardOut, _) = standard.Forward(x, null);
        Assert.IsTrue(MaxAbsDifference(standardOut, steepOut) > 1e-3, "lambda 0.5 changes the output");

        if (kind == RecurrentCellKind.Lstm)
        {
            var cellSlope = Options(kind, Hidden);
            cellSlope.Slopes = new ActivationSlopes { CellOutput = 0.5 };
            using var cellSteep = new QuantizedRecurrentStack("cell", In, cellSlope, Float, Float);
            cellSteep.load_state_dict(standard.state_dict());
            var (cellOut, _) = cellSteep.Forward(x, null);
            Assert.IsTrue(MaxAbsDifference(standardOut, cellOut) > 1e-3, "CellOutput slope changes the output");
            // |tanh(c / 0.5)| >= |tanh(c)|, and h = o * tanh(.) at the first step (same gates) grows in magnitude.
            Assert.IsTrue((cellOut[0].abs() - standardOut[0].abs()).min().item<float>() >= -1e-6);
        }
    }

    [TestMethod]
    [DataRow(RecurrentCellKind.Lstm)]
    [DataRow(RecurrentCellKind.Gru)]
    public void ActivationQuantizerPutsGatesAndHiddenStateOnItsGridAndRunsTheLoop(RecurrentCellKind kind)
    {
        manual_seed(8);
        using var scope = NewDisposeScope();
        using var net = new QuantizedRecurrentStack("stack", In, Options(kind, Hidden, layers: 2), Float, Quarter);
        Assert.IsFalse(net.UsesFusedKernel);
        int expectedQuantizers = kind == RecurrentCellKind.Lstm ? 6 : 4;
        Assert.AreEqual(expectedQuantizers, net.Layers[0].ActivationQuantizers.Count);
        Assert.AreEqual(kind == RecurrentCellKind.Lstm, net.Layers[0].ActivationQuantizers[^1].IsIdentity, "the LSTM's cell state stays float by default");
        Assert.AreEqual(expectedQuantizers, net.Layers[0].ActivationQuantizers.Distinct().Count());

        var x = randn(Time, Batch, In);
        var (output, state) = net.Forward(x, null);
        var scaled = output * 4;
        AssertClose(scaled.round(), scaled, 1e-5, "outputs on the 1/4 grid");
        var hs = state.H * 4;
        AssertClose(hs.round(), hs, 1e-5, "final h on the 1/4 grid");

        output.sum().backward();
        Assert.IsTrue(net.Layers[0].WeightIh.grad!.abs().sum().item<float>() > 0, "the STE lets gradients through");
    }

    [TestMethod]
    [DataRow(RecurrentCellKind.Lstm)]
    [DataRow(RecurrentCellKind.Gru)]
    public void MultiLayerShapes(RecurrentCellKind kind)
    {
        using var scope = NewDisposeScope();
        using var net = new QuantizedRecurrentStack("stack", In, Options(kind, Hidden, layers: 3));
        Assert.AreEqual(3, net.LayerCount);
        var (output, state) = net.Forward(randn(Time, Batch, In), null);
        CollectionAssert.AreEqual(new long[] { Time, Batch, Hidden }, output.shape);
        CollectionAssert.AreEqual(new long[] { 3, Batch, Hidden }, state.H.shape);
        if (kind == RecurrentCellKind.Lstm) CollectionAssert.AreEqual(new long[] { 3, Batch, Hidden }, state.C!.shape);
        else Assert.IsNull(state.C);
        CollectionAssert.AreEqual(new long[] { (kind == RecurrentCellKind.Lstm ? 4 : 3) * Hidden, Hidden }, net.Layers[1].WeightIh.shape);
        // The last layer's final h is the output's last step.
        AssertClose(output[Time - 1], state.H[2], 0, "last step");
    }

    [TestMethod]
    [DataRow(false)]
    [DataRow(true)]
    public void CarriedStateContinuesTheSequence(bool forceLoop)
    {
        manual_seed(9);
        using var scope = NewDisposeScope();
        using var net = new QuantizedRecurrentStack("stack", In, Options(RecurrentCellKind.Lstm, Hidden, layers: 2, normalization: RecurrentNormalization.Layer), Sign, Float);
        net.ForceCellLoop = forceLoop;
        var x = randn(6, Batch, In);
        var (whole, wholeState) = net.Forward(x, null);
        var (first, firstState) = net.Forward(x[..3], null);
        var (second, secondState) = net.Forward(x[3..], firstState.Detach());
        AssertClose(whole, cat(new[] { first, second }, 0), 1e-5, "output");
        AssertClose(wholeState.H, secondState.H, 1e-5, "h");
        AssertClose(wholeState.C!, secondState.C!, 1e-5, "c");
    }

    [TestMethod]
    public void DropoutOnlyInTraining()
    {
        manual_seed(10);
        using var scope = NewDisposeScope();
        using var net = new QuantizedRecurrentStack("stack", In, Options(RecurrentCellKind.Lstm, Hidden, layers: 2, dropout: 0.5));
        var x = randn(Time, Batch, In);

        net.eval();
        var (a, _) = net.Forward(x, null);
        var (b, _) = net.Forward(x, null);
        AssertClose(a, b, 0, "evaluation is deterministic");

        net.train();
        var (c, _) = net.Forward(x, null);
        Assert.IsTrue(MaxAbsDifference(a, c) > 1e-3, "training applies dropout");
        Assert.IsTrue(c.eq(0).sum().item<long>() > 0, "output dropout zeroes some outputs");
    }

    [TestMethod]
    public void BadOptionsAndInputsGetClearErrors()
    {
        var bad = Options(RecurrentCellKind.Lstm, 0);
        var e = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new QuantizedRecurrentStack("s", In, bad));
        StringAssert.Contains(e.Message, "HiddenSize");
        var slope = Options(RecurrentCellKind.Lstm, Hidden);
        slope.Slopes.ForgetGate = 0;
        e = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new QuantizedRecurrentStack("s", In, slope));
        StringAssert.Contains(e.Message, "Slopes.ForgetGate");
        var dropout = Options(RecurrentCellKind.Lstm, Hidden, dropout: 1);
        e = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new QuantizedRecurrentStack("s", In, dropout));
        StringAssert.Contains(e.Message, "Dropout");

        using var scope = NewDisposeScope();
        using var net = new QuantizedRecurrentStack("s", In, Options(RecurrentCellKind.Lstm, Hidden, layers: 2));
        var a = Assert.ThrowsExactly<ArgumentException>(() => net.Forward(randn(Time, Batch, In + 1), null));
        StringAssert.Contains(a.Message, "time-major");
        a = Assert.ThrowsExactly<ArgumentException>(() => net.Forward(randn(Time, Batch, In), new RecurrentState(zeros(2, Batch, Hidden), null)));
        StringAssert.Contains(a.Message, "LSTM state needs C");
    }

    [TestMethod]
    [DataRow(RecurrentNormalization.None)]
    [DataRow(RecurrentNormalization.Layer)]
    [DataRow(RecurrentNormalization.BatchPerStep)]
    public void LiveTensorCountStaysFlatAcrossTrainingSteps(RecurrentNormalization normalization)
    {
        manual_seed(11);
        using var net = new QuantizedRecurrentStack("stack", In, Options(RecurrentCellKind.Lstm, Hidden, layers: 2, normalization: normalization, dropout: 0.2), Sign, Quarter);
        var slopedOptions = Options(RecurrentCellKind.Gru, Hidden, normalization: RecurrentNormalization.Weight);
        using var fused = new QuantizedRecurrentStack("fused", In, slopedOptions, Sign, Float) { ForceFusedKernel = true };
        Assert.IsTrue(fused.UsesFusedKernel);
        using var x = randn(Time, Batch, In);
        RecurrentState? carried = null;

        void Step()
        {
            using var scope = NewDisposeScope();
            foreach (var module in new[] { net, fused })
            {
                module.zero_grad();
                var state = module == net ? carried : null;
                var (output, final) = module.Forward(x, state);
                output.square().mean().backward();
                if (module == net)
                {
                    carried?.Dispose();
                    carried = final.Detach().DetachFromDisposeScope();
                }
            }
            using (no_grad())
                foreach (var p in net.parameters()) p.sub_(p.grad! * 0.01);
        }

        Step();
        Step();
        long before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        for (int i = 0; i < 5; i++) Step();
        long after = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        Assert.AreEqual(before, after, "live tensors after 5 more steps");
        carried?.Dispose();
    }

    private static (Tensor Output, Dictionary<string, Tensor> Grads) RunWithGradients(QuantizedRecurrentStack net, Tensor x, Tensor weights)
    {
        net.zero_grad();
        var (output, state) = net.Forward(x, null);
        ((output * weights).sum() + state.H.sum() + (state.C?.sum() ?? tensor(0f))).backward();
        var grads = net.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!.clone());
        return (output.detach(), grads);
    }

    private static void CopyWeights(QuantizedRecurrentStack net, Dictionary<string, TorchSharp.Modules.Parameter> reference)
    {
        using var _ = no_grad();
        for (int l = 0; l < net.LayerCount; l++)
        {
            var layer = net.Layers[l];
            reference[$"weight_ih_l{l}"].copy_(layer.WeightIh);
            reference[$"weight_hh_l{l}"].copy_(layer.WeightHh);
            reference[$"bias_ih_l{l}"].copy_(layer.BiasIh);
            reference[$"bias_hh_l{l}"].copy_(layer.BiasHh);
        }
    }
}
