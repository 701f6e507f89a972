using TorchSharp;
using static Microsoft.ML.Quantized.Tests.RecurrentTestSupport;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized.Tests;

/// <summary>
/// The hand-written sequence functions (<see cref="LstmSequenceFunction"/>, <see cref="GruSequenceFunction"/>) against the
/// autograd loop they replace (<see cref="QuantizedRecurrentCell.ForceAutogradLoop"/>, itself tested against torch's LSTM and
/// GRU and a reference written with torch ops): the same outputs, final states, running statistics and gradients of every
/// parameter, the input, h0 and (LSTM) c0.
/// </summary>
[TestClass]
public sealed class SequenceFunctionTests
{
    private const int In = 5, Hidden = 6, Batch = 4, Time = 7;

    [TestMethod]
    [DataRow(RecurrentCellKind.Lstm, RecurrentNormalization.None, false, true)]
    [DataRow(RecurrentCellKind.Gru, RecurrentNormalization.None, false, true)]
    [DataRow(RecurrentCellKind.Lstm, RecurrentNormalization.None, true, true)]
    [DataRow(RecurrentCellKind.Gru, RecurrentNormalization.None, true, true)]
    [DataRow(RecurrentCellKind.Lstm, RecurrentNormalization.Layer, false, true)]
    [DataRow(RecurrentCellKind.Gru, RecurrentNormalization.Layer, false, true)]
    [DataRow(RecurrentCellKind.Lstm, RecurrentNormalization.Layer, true, true)]
    [DataRow(RecurrentCellKind.Gru, RecurrentNormalization.Layer, true, true)]
    [DataRow(RecurrentCellKind.Lstm, RecurrentNormalization.Layer, true, false)]
    [DataRow(RecurrentCellKind.Gru, RecurrentNormalization.Layer, true, false)]
    [DataRow(RecurrentCellKind.Lstm, RecurrentNormalization.BatchPerStep, false, true)]
    [DataRow(RecurrentCellKind.Gru, RecurrentNormalization.BatchPerStep, false, true)]
    [DataRow(RecurrentCellKind.Lstm, RecurrentNormalization.BatchPerStep, true, true)]
    [DataRow(RecurrentCellKind.Gru, RecurrentNormalization.BatchPerStep, true, true)]
    [DataRow(RecurrentCellKind.Lstm, RecurrentNormalization.BatchPerStep, true, false)]
    [DataRow(RecurrentCellKind.Gru, RecurrentNormalization.BatchPerStep, true, false)]
    [DataRow(RecurrentCellKind.Lstm, RecurrentNormalization.BatchShared, false, true)]
    [DataRow(RecurrentCellKind.Gru, RecurrentNormalization.BatchShared, false, true)]
    [DataRow(RecurrentCellKind.Lstm, RecurrentNormalization.BatchShared, true, false)]
    [DataRow(RecurrentCellKind.Gru, RecurrentNormalization.BatchShared, true, false)]
    public void HandWrittenBackwardEqualsAutogradLoop(RecurrentCellKind kind, RecurrentNormalization normalization, bool slopes, bool training)
        => AssertEqualsAutogradLoop(kind, normalization, slopes, training, ScalarType.Float64, 1e-10);

    [TestMethod]
    [DataRow(RecurrentCellKind.Lstm, RecurrentNormalization.None)]
    [DataRow(RecurrentCellKind.Gru, RecurrentNormalization.None)]
    [DataRow(RecurrentCellKind.Lstm, RecurrentNormalization.Layer)]
    [DataRow(RecurrentCellKind.Gru, RecurrentNormalization.Layer)]
    [DataRow(RecurrentCellKind.Lstm, RecurrentNormalization.BatchPerStep)]
    [DataRow(RecurrentCellKind.Gru, RecurrentNormalization.BatchPerStep)]
    public void Float32EqualsAutogradLoop(RecurrentCellKind kind, RecurrentNormalization normalization)
        // Training runs in float32, the function's other instantiation: the same comparison at float32's precision (standard
        // slopes: steep ones make two float32 operation orders drift apart by up to 1e-3 relative within a few steps).
        => AssertEqualsAutogradLoop(kind, normalization, slopes: false, training: true, ScalarType.Float32, 1e-5);

    [TestMethod]
    [DataRow(RecurrentCellKind.Lstm, RecurrentNormalization.None, true)]
    [DataRow(RecurrentCellKind.Gru, RecurrentNormalization.None, true)]
    [DataRow(RecurrentCellKind.Lstm, RecurrentNormalization.Layer, true)]
    [DataRow(RecurrentCellKind.Gru, RecurrentNormalization.Layer, true)]
    [DataRow(RecurrentCellKind.Lstm, RecurrentNormalization.BatchPerStep, true)]
    [DataRow(RecurrentCellKind.Gru, RecurrentNormalization.BatchPerStep, true)]
    [DataRow(RecurrentCellKind.Lstm, RecurrentNormalization.Layer, false)]
    [DataRow(RecurrentCellKind.Gru, RecurrentNormalization.Layer, false)]
    public void BernoulliTernaryActivationsEqualAutogradLoop(RecurrentCellKind kind, RecurrentNormalization normalization, bool training)
        // HitNet's BTQ on the gates, h' and (LSTM) the cell state: in training the same random draws in the same order, the
        // straight-through gradient clipped to [-1, 1] (the cell state leaves it); slopes so the gates reach past 0.5.
        => AssertEqualsAutogradLoop(kind, normalization, slopes: true, training, ScalarType.Float64, 1e-10,
            () => new BernoulliTernaryQuantizer(), RecurrentActivations.Gates | RecurrentActivations.Hidden | RecurrentActivations.CellState);

    [TestMethod]
    [DataRow(RecurrentCellKind.Lstm, RecurrentNormalization.None, RecurrentActivations.Gates | RecurrentActivations.Hidden | RecurrentActivations.CellState)]
    [DataRow(RecurrentCellKind.Gru, RecurrentNormalization.None, RecurrentActivations.Gates | RecurrentActivations.Hidden)]
    [DataRow(RecurrentCellKind.Lstm, RecurrentNormalization.Layer, RecurrentActivations.Gates | RecurrentActivations.CellState)]
    [DataRow(RecurrentCellKind.Gru, RecurrentNormalization.BatchPerStep, RecurrentActivations.Gates)]
    [DataRow(RecurrentCellKind.Lstm, RecurrentNormalization.None, RecurrentActivations.Hidden)]
    [DataRow(RecurrentCellKind.Gru, RecurrentNormalization.Layer, RecurrentActivations.Hidden)]
    public void ClippedActivationQuantizersEqualAutogradLoop(RecurrentCellKind kind, RecurrentNormalization normalization, RecurrentActivations activations)
        // A quantizer that clips inside the gates' and states' range, so every straight-through factor path is taken (h' alone
        // too: after clipped gates it stays inside the range).
        => AssertEqualsAutogradLoop(kind, normalization, slopes: true, training: true, ScalarType.Float64, 1e-10, ClippedQuarter, activations);

    [TestMethod]
    [DataRow(RecurrentCellKind.Lstm, RecurrentNormalization.None, "uniform4@0.8")]
    [DataRow(RecurrentCellKind.Gru, RecurrentNormalization.Layer, "uniform4@0.8")]
    [DataRow(RecurrentCellKind.Lstm, RecurrentNormalization.BatchPerStep, "uniform3-sr@0.9")]
    [DataRow(RecurrentCellKind.Gru, RecurrentNormalization.None, "uniform3-sr@0.9")]
    [DataRow(RecurrentCellKind.Lstm, RecurrentNormalization.Layer, "uniform4-pow2-row@0.7")]
    public void UniformActivationsEqualAutogradLoop(RecurrentCellKind kind, RecurrentNormalization normalization, string quantizer)
        // Steps from each [batch, hidden] block's (or row's) max |x|, stochastic rounding's draws in training. A multiplier below 1
        // keeps the largest value clear of the clip range's end: at multiplier 1 it sits on it (max |x| against (max |x| / Qp) Qp),
        // where an ulp of difference in the activations decides whether its gradient passes.
        => AssertEqualsAutogradLoop(kind, normalization, slopes: true, training: true, ScalarType.Float64, 1e-10,
            () => QuantizerFactory.Create(QuantizerRegistry.Parse(quantizer)), RecurrentActivations.Gates | RecurrentActivations.Hidden | RecurrentActivations.CellState);

    [TestMethod]
    [DataRow(RecurrentCellKind.Lstm, RecurrentNormalization.None, "uniform4-lsq", RecurrentActivations.Gates | RecurrentActivations.Hidden | RecurrentActivations.CellState)]
    [DataRow(RecurrentCellKind.Gru, RecurrentNormalization.Layer, "uniform4-lsq@0.8", RecurrentActivations.Gates | RecurrentActivations.Hidden)]
    [DataRow(RecurrentCellKind.Lstm, RecurrentNormalization.Layer, "uniform3-sr-lsq", RecurrentActivations.Gates | RecurrentActivations.CellState)]
    [DataRow(RecurrentCellKind.Gru, RecurrentNormalization.None, "uniform3-sr-lsq", RecurrentActivations.Gates | RecurrentActivations.Hidden)]
    [DataRow(RecurrentCellKind.Lstm, RecurrentNormalization.BatchPerStep, "uniform4-lsq-mse@0.9", RecurrentActivations.Hidden)]
    public void LearnedStepActivationsEqualAutogradLoop(RecurrentCellKind kind, RecurrentNormalization normalization, string quantizer, RecurrentActivations activations)
        // LSQ: the steps, initialized by a first forward (until then the autograd loop runs), are inputs of the function, and
        // their gradients (LSQ's round(v) - v inside the range, the clip level outside, times its gradient scale) are compared
        // with the parameters' like every other gradient.
        => AssertEqualsAutogradLoop(kind, normalization, slopes: true, training: true, ScalarType.Float64, 1e-10,
            () => QuantizerFactory.Create(QuantizerRegistry.Parse(quantizer)), activations, initializeSteps: true);

    [TestMethod]
    [DataRow(RecurrentCellKind.Lstm, RecurrentNormalization.None, "none")]
    [DataRow(RecurrentCellKind.Lstm, RecurrentNormalization.Layer, "none")]
    [DataRow(RecurrentCellKind.Lstm, RecurrentNormalization.BatchPerStep, "none")]
    [DataRow(RecurrentCellKind.Lstm, RecurrentNormalization.Layer, "btq")]
    [DataRow(RecurrentCellKind.Lstm, RecurrentNormalization.BatchPerStep, "uniform4-lsq@0.9")]
    [DataRow(RecurrentCellKind.Gru, RecurrentNormalization.Layer, "none")]
    [DataRow(RecurrentCellKind.Gru, RecurrentNormalization.BatchPerStep, "none")]
    [DataRow(RecurrentCellKind.Gru, RecurrentNormalization.Layer, "btq")]
    [DataRow(RecurrentCellKind.Gru, RecurrentNormalization.None, "uniform4-lsq@0.9")]
    public void StepsSplitByRowsEqualAutogradLoop(RecurrentCellKind kind, RecurrentNormalization normalization, string activations)
        // 24 rows x 4 (LSTM) or 3 (GRU) x 256 features a step, above RowParts' 16,384 values: the row-by-row work runs in parts
        // over the intra-op threads (the forward pass's only without activation quantizers; the backward's always, the gain,
        // bias and learned steps' gradients summed per part).
        => AssertEqualsAutogradLoop(kind, normalization, slopes: true, training: true, ScalarType.Float64, 1e-10,
            () => QuantizerFactory.Create(QuantizerRegistry.Parse(activations)), RecurrentActivations.Gates | RecurrentActivations.Hidden | RecurrentActivations.CellState,
            initializeSteps: activations.Contains("lsq"), batch: 24, hidden: 256);

    [TestMethod]
    [DataRow(RecurrentCellKind.Lstm, RecurrentNormalization.Layer, true)]
    [DataRow(RecurrentCellKind.Gru, RecurrentNormalization.BatchPerStep, true)]
    [DataRow(RecurrentCellKind.Lstm, RecurrentNormalization.None, false)]
    [DataRow(RecurrentCellKind.Gru, RecurrentNormalization.Layer, false)]
    public void EitherStepProductEqualsAutogradLoop(RecurrentCellKind kind, RecurrentNormalization normalization, bool managed)
    {
        // The rows above run the step product this machine picks (the managed kernel with 512-bit vectors in hardware,
        // libtorch's mm otherwise); these run each one whatever the machine.
        bool machineDefault = StepProduct.Managed;
        StepProduct.Managed = managed;
        try
        {
            AssertEqualsAutogradLoop(kind, normalization, slopes: true, training: true, ScalarType.Float64, 1e-10);
        }
        finally { StepProduct.Managed = machineDefault; }
    }

    [TestMethod]
    [DataRow("btq", LayerNormForm.PerGate, true)]
    [DataRow("uniform4-sr-row@0.9", LayerNormForm.PerGate, true)]
    [DataRow("uniform4-lsq", LayerNormForm.PerGate, false)] // until a first forward has initialized its step (below)
    [DataRow("uniform4-mse", LayerNormForm.PerGate, false)]
    [DataRow("uniform4-fixed", LayerNormForm.PerGate, false)]
    [DataRow("none", LayerNormForm.Joint, false)]
    public void TheSequenceFunctionRunsWhereEveryStepOperationHasASpanForm(string activations, LayerNormForm form, bool expected)
    {
        // Learned, minimum-error and fixed steps have no span form, nor does the joint layer norm's normalization of c.
        using var scope = NewDisposeScope();
        var options = Options(RecurrentCellKind.Lstm, Hidden, normalization: RecurrentNormalization.Layer);
        options.LayerNormForm = form;
        options.ActivationQuantizer = QuantizerRegistry.Parse(activations);
        using var cell = new QuantizedLstmCell("lstm", In, options) { ForceCellLoop = true };
        Assert.AreEqual(expected, cell.RunsSequenceFunction(randn(Time, Batch, In)));
        Assert.IsFalse(cell.RunsSequenceFunction(randn(Time, Batch, In, dtype: ScalarType.Float16)), "float16: no span type");
    }

    [TestMethod]
    public void A_learned_step_runs_the_sequence_function_once_a_first_forward_has_set_it()
    {
        using var scope = NewDisposeScope();
        var options = Options(RecurrentCellKind.Lstm, Hidden, normalization: RecurrentNormalization.Layer);
        options.ActivationQuantizer = QuantizerRegistry.Parse("uniform4-lsq");
        using var cell = new QuantizedLstmCell("lstm", In, options) { ForceCellLoop = true };
        var x = randn(Time, Batch, In);
        Assert.IsFalse(cell.RunsSequenceFunction(x), "the step starts from the first tensor the autograd loop hands it");
        cell.Forward(x, zeros(Batch, Hidden), zeros(Batch, Hidden));
        Assert.IsTrue(cell.RunsSequenceFunction(x));
        var per = QuantizerRegistry.Parse("uniform4-lsq-row");
        Assert.IsNull(QuantizerFactory.Create(per, rows: Batch).SpanForm, "a per-row learned step has no span form");
    }

    private static void AssertEqualsAutogradLoop(RecurrentCellKind kind, RecurrentNormalization normalization, bool slopes, bool training, ScalarType dtype, double tolerance,
        Func<Quantizer>? activationQuantizer = null, RecurrentActivations? quantizedActivations = null, bool initializeSteps = false,
        int batch = Batch, int hidden = Hidden)
    {
        manual_seed(11);
        using var scope = NewDisposeScope();
        var options = Options(kind, hidden, normalization: normalization);
        if (quantizedActivations is { } activations) options.QuantizedActivations = activations;
        options.MaxNormalizedSteps = 3; // fewer sets than steps: steps 2.. share the last set
        if (slopes) options.Slopes = new ActivationSlopes { InputGate = 0.5, ForgetGate = 0.75, Candidate = 0.25, OutputGate = 1.5, CellOutput = 0.5 };
        // In double precision any difference beyond rounding is a wrong derivative.
        var defaultType = get_default_dtype();
        set_default_dtype(dtype);
        QuantizedRecurrentCell cell;
        try
        {
            cell = kind == RecurrentCellKind.Lstm
                ? new QuantizedLstmCell("lstm", In, options, Sign, activationQuantizer ?? Float) { ForceCellLoop = true }
                : new QuantizedGruCell("gru", In, options, Sign, activationQuantizer ?? Float) { ForceCellLoop = true };
        }
        finally { set_default_dtype(defaultType); }
        using var _ = cell;
        Assert.AreEqual(dtype, cell.WeightHh.dtype);
        Assert.IsFalse(cell.UsesFusedKernel);
        RandomizeNormalizationParameters(cell);
        if (initializeSteps)
        {
            // Learned steps start from the first tensor each quantizer sees, in the autograd loop.
            using (no_grad()) cell.Forward(randn(Time, batch, In, dtype: dtype), randn(batch, hidden, dtype: dtype), cell.HasCellState ? randn(batch, hidden, dtype: dtype) : null);
        }
        if (!training)
        {
            // Running statistics of a few training batches first, so evaluation reads non-trivial ones.
            using (no_grad()) for (int k = 0; k < 3; k++) cell.Forward(randn(Time, batch, In, dtype: dtype) * 2, randn(batch, hidden, dtype: dtype), cell.HasCellState ? randn(batch, hidden, dtype: dtype) : null);
        }
        cell.train(training);
        var x = randn(Time, batch, In, dtype: dtype);
        var h0 = randn(batch, hidden, dtype: dtype);
        var c0 = cell.HasCellState ? randn(batch, hidden, dtype: dtype) : null;
        var outputWeights = randn(Time, batch, hidden, dtype: dtype);
        var buffersBefore = cell.named_buffers().ToDictionary(b => b.name, b => b.buffer.clone());

        Assert.IsTrue(cell.RunsSequenceFunction(x), "the hand-written function runs");
        var handWritten = Run(cell, x, h0, c0, outputWeights);
        var buffersAfterHandWritten = cell.named_buffers().ToDictionary(b => b.name, b => b.buffer.clone());
        using (no_grad()) foreach (var (name, buffer) in cell.named_buffers()) buffer.copy_(buffersBefore[name]);
        cell.ForceAutogradLoop = true;
        Assert.IsFalse(cell.RunsSequenceFunction(x));
        var reference = Run(cell, x, h0, c0, outputWeights);

        AssertClose(reference.Output, handWritten.Output, tolerance, "output");
        AssertClose(reference.H, handWritten.H, tolerance, "h");
        if (cell.HasCellState) AssertClose(reference.C!, handWritten.C!, tolerance, "c");
        foreach (var (name, buffer) in cell.named_buffers()) AssertClose(buffer, buffersAfterHandWritten[name], tolerance, $"buffer {name}");
        if (training && normalization is RecurrentNormalization.BatchPerStep or RecurrentNormalization.BatchShared)
            Assert.IsTrue(MaxAbsDifference(buffersBefore["hidden_norm.running_mean"], buffersAfterHandWritten["hidden_norm.running_mean"]) > 1e-3,
                "training moved the hidden side's running means");
        Assert.AreEqual(reference.Gradients.Count, handWritten.Gradients.Count);
        foreach (var (name, gradient) in reference.Gradients)
        {
            double largest = gradient.abs().max().to(ScalarType.Float64).item<double>();
            Assert.IsTrue(largest > 1e-6, $"{name}: zero gradient");
            // A learned step is a float32 parameter whatever the cell's type: autograd adds its per-step contributions in
            // float32, the function sums them in the cell's type and rounds once, so they agree to float32's precision.
            double precision = name.EndsWith(".step", StringComparison.Ordinal) ? Math.Max(tolerance, 1e-6) : tolerance;
            AssertClose(gradient, handWritten.Gradients[name], precision * Math.Max(1, largest), $"gradient of {name}");
        }
    }

    [TestMethod]
    public void GatesAndStatesMatchHandWorkedStep()
    {
        // One unit, one step, no normalization, slopes 1: z = x + w h0 per gate, so every quantity is a scalar by hand.
        using var scope = NewDisposeScope();
        var options = Options(RecurrentCellKind.Lstm, 1);
        using var cell = new QuantizedLstmCell("lstm", 1, options, Float, Float) { ForceCellLoop = true };
        using (no_grad())
        {
            cell.WeightIh.copy_(tensor(new float[] { 1f, 2f, -1f, 0.5f }).view(4, 1));
            cell.WeightHh.copy_(tensor(new float[] { 0.5f, -0.5f, 1f, 1f }).view(4, 1));
            cell.BiasIh.zero_();
            cell.BiasHh.zero_();
        }
        var x = tensor(new float[] { 1f }).view(1, 1, 1);
        var h0 = tensor(new float[] { 2f }).view(1, 1).requires_grad_();
        var c0 = tensor(new float[] { -1f }).view(1, 1).requires_grad_();
        var (output, _, c) = cell.Forward(x, h0, c0);
        // z = (1 + 1, 2 - 1, -1 + 2, 0.5 + 2) = (2, 1, 1, 2.5)
        double i = Sigmoid(2), f = Sigmoid(1), g = Math.Tanh(1), o = Sigmoid(2.5);
        double cNew = f * -1 + i * g, h = o * Math.Tanh(cNew);
        Assert.AreEqual(cNew, c!.item<float>(), 1e-6, "c");
        Assert.AreEqual(h, output.item<float>(), 1e-6, "h");
        output.sum().backward();
        // dh/dc0 = o tanh'(c') f
        Assert.AreEqual(o * (1 - Math.Tanh(cNew) * Math.Tanh(cNew)) * f, c0.grad!.item<float>(), 1e-6, "dh/dc0");
    }

    private static double Sigmoid(double z) => 1 / (1 + Math.Exp(-z));

    private static void RandomizeNormalizationParameters(QuantizedRecurrentCell cell)
    {
        using var _ = no_grad();
        foreach (var (name, parameter) in cell.named_parameters())
            if (name.EndsWith("norm.gain") || name.EndsWith("norm.bias")) parameter.copy_(randn_like(parameter) * 0.5 + (name.EndsWith("gain") ? 1 : 0));
    }

    private static (Tensor Output, Tensor H, Tensor? C, Dictionary<string, Tensor> Gradients) Run(
        QuantizedRecurrentCell cell, Tensor x, Tensor h0, Tensor? c0, Tensor outputWeights)
    {
        cell.zero_grad();
        manual_seed(23); // the stochastic activation quantizers' draws, the same for both loops
        var xg = x.clone().requires_grad_();
        var hg = h0.clone().requires_grad_();
        var cg = c0?.clone().requires_grad_();
        var (output, h, c) = cell.Forward(xg, hg, cg);
        var loss = (output * outputWeights).sum() + (h * h).sum();
        if (c is not null) loss = loss + (c * c.sin()).sum();
        loss.backward();
        var gradients = cell.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!.clone());
        gradients["input"] = xg.grad!.clone();
        gradients["h0"] = hg.grad!.clone();
        if (cg is not null) gradients["c0"] = cg.grad!.clone();
        return (output.detach(), h.detach(), c?.detach(), gradients);
    }
}
