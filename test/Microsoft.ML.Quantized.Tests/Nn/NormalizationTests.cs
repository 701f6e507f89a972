using TorchSharp;
using static Microsoft.ML.Quantized.Tests.RecurrentTestSupport;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized.Tests;

[TestClass]
public sealed class NormalizationTests
{
    private const int In = 5, Hidden = 6, Batch = 4, Time = 3;

    [TestMethod]
    public void LayerNormGivesRowsMeanZeroVarianceOneBeforeGainAndBias()
    {
        manual_seed(20);
        using var scope = NewDisposeScope();
        using var norm = new RecurrentLayerNorm("ln", 12);
        var x = randn(Time, Batch, 12) * 3 + 2;

        var y = norm.forward(x);
        AssertClose(zeros(Time, Batch), y.mean(new long[] { -1 }), 1e-5, "row means");
        AssertClose(ones(Time, Batch), y.var(-1, unbiased: false), 1e-3, "row variances");

        using (no_grad())
        {
            norm.Gain.copy_(arange(12, dtype: ScalarType.Float32) / 4);
            norm.Bias.fill_(0.5);
        }
        AssertClose(y * norm.Gain + norm.Bias, norm.forward(x), 1e-5, "gain and bias applied after normalizing");
    }

    [TestMethod]
    public void LayerNormPerGateNormalizesEachGroupOnItsOwnThenAppliesGainAndBias()
    {
        using var scope = NewDisposeScope();
        using var perGate = new RecurrentLayerNorm("ln", 4, groups: 2, epsilon: 0);
        using var joint = new RecurrentLayerNorm("ln", 4, groups: 1, epsilon: 0);
        using (no_grad())
        {
            foreach (var norm in new[] { perGate, joint })
            {
                norm.Gain.copy_(tensor(new float[] { 1, 2, 3, 4 }));
                norm.Bias.copy_(tensor(new float[] { 0.5f, 0, 0, -1 }));
            }
        }
        var x = tensor(new float[] { 1, 3, 10, 14 }).reshape(1, 4);

        // Groups [1, 3] (mean 2, variance 1) and [10, 14] (mean 12, variance 4) each become [-1, 1]:
        // times the gain [1, 2, 3, 4] plus the bias [0.5, 0, 0, -1].
        AssertClose(tensor(new float[] { -0.5f, 2, -3, 3 }).reshape(1, 4), perGate.forward(x), 1e-6, "per gate");
        // One group: mean 7, variance (36 + 16 + 9 + 49) / 4 = 27.5.
        float s = MathF.Sqrt(27.5f);
        AssertClose(tensor(new float[] { -6 / s + 0.5f, -4 / s * 2, 3 / s * 3, 7 / s * 4 - 1 }).reshape(1, 4), joint.forward(x), 1e-6, "joint");
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new RecurrentLayerNorm("ln", 6, groups: 4));
    }

    /// <summary>
    /// The LSTM's layer normalization against the formulas, written out here: per gate (Hou et al.: each gate's H values of
    /// W_x x and W_h h normalized on their own, the cell state not normalized) and joint (all 4H values, plus LN(c)).
    /// </summary>
    [TestMethod]
    [DataRow(LayerNormForm.PerGate)]
    [DataRow(LayerNormForm.Joint)]
    public void LayerNormLstmMatchesReference(LayerNormForm form)
    {
        manual_seed(21);
        using var scope = NewDisposeScope();
        var options = Options(RecurrentCellKind.Lstm, Hidden, normalization: RecurrentNormalization.Layer);
        options.LayerNormForm = form;
        using var cell = new QuantizedLstmCell("lstm", In, options, Sign, Float);
        Assert.IsFalse(cell.UsesFusedKernel);
        Assert.AreEqual(form == LayerNormForm.Joint, cell.CellLayerNorm is not null, "only the joint form normalizes the cell state");
        CollectionAssert.AreEqual(new long[] { 4 * Hidden }, cell.InputLayerNorm!.Gain.shape, "gain [G*H] in both forms");
        using (no_grad())
        {
            foreach (var norm in new[] { cell.InputLayerNorm!, cell.HiddenLayerNorm!, cell.CellLayerNorm }.OfType<RecurrentLayerNorm>())
            {
                norm.Gain.copy_(rand(norm.Gain.shape) + 0.5);
                norm.Bias.copy_(randn(norm.Bias.shape) * 0.1);
            }
        }
        var x = randn(Time, Batch, In) * 3;
        var h0 = randn(Batch, Hidden);
        var c0 = randn(Batch, Hidden);

        var (output, h, c) = cell.Forward(x, h0, c0);

        static Tensor Standardize(Tensor v) => (v - v.mean(new long[] { -1 }, keepdim: true)) / (v.var(-1, unbiased: false, keepdim: true) + 1e-5).sqrt();
        Tensor Ln(Tensor v, RecurrentLayerNorm n) => form == LayerNormForm.Joint
            ? Standardize(v) * n.Gain + n.Bias
            : cat(Enumerable.Range(0, 4).Select(k => Standardize(v.narrow(1, k * Hidden, Hidden))).ToArray(), 1) * n.Gain + n.Bias;
        var wih = SignOf(cell.WeightIh);
        var whh = SignOf(cell.WeightHh);
        Tensor rh = h0, rc = c0;
        for (int t = 0; t < Time; t++)
        {
            var gates = Ln(x[t].mm(wih.t()), cell.InputLayerNorm!) + Ln(rh.mm(whh.t()), cell.HiddenLayerNorm!) + cell.BiasIh + cell.BiasHh;
            var i = gates.narrow(1, 0, Hidden).sigmoid();
            var f = gates.narrow(1, Hidden, Hidden).sigmoid();
            var g = gates.narrow(1, 2 * Hidden, Hidden).tanh();
            var o = gates.narrow(1, 3 * Hidden, Hidden).sigmoid();
            rc = f * rc + i * g;
            rh = o * (form == LayerNormForm.Joint ? Standardize(rc) * cell.CellLayerNorm!.Gain + cell.CellLayerNorm.Bias : rc).tanh();
            AssertClose(rh, output[t], 1e-5, $"h at step {t}");
        }
        AssertClose(rh, h, 1e-5, "final h");
        AssertClose(rc, c!, 1e-5, "final c (not normalized)");
    }

    [TestMethod]
    public void LayerNormForm_OptionsSavedBeforeItWasNamed_LoadAsJoint()
    {
        Assert.AreEqual(LayerNormForm.PerGate, new QuantizedRecurrentOptions().LayerNormForm, "new models: Hou et al.'s form");
        var options = new LanguageModelOptions();
        options.Recurrent.Normalization = RecurrentNormalization.Layer;
        var json = System.Text.Json.Nodes.JsonNode.Parse(System.Text.Json.JsonSerializer.Serialize(options, ModelFile.HeaderJson))!;
        Assert.IsTrue(json["Recurrent"]!.AsObject().Remove(nameof(QuantizedRecurrentOptions.LayerNormForm)));

        var old = System.Text.Json.JsonSerializer.Deserialize<LanguageModelOptions>(json.ToJsonString(), ModelFile.HeaderJson)!;
        Assert.AreEqual(LayerNormForm.Joint, old.Recurrent.LayerNormForm, "a header without the setting was trained with the joint form");
        using var cell = new QuantizedLstmCell("lstm", In, old.Recurrent);
        Assert.AreEqual(1, cell.InputLayerNorm!.Groups);
        Assert.IsNotNull(cell.CellLayerNorm, "so its checkpoint's cell_norm parameters have a home");

        var now = System.Text.Json.JsonSerializer.Deserialize<LanguageModelOptions>(System.Text.Json.JsonSerializer.Serialize(options, ModelFile.HeaderJson), ModelFile.HeaderJson)!;
        Assert.AreEqual(LayerNormForm.PerGate, now.Recurrent.LayerNormForm, "a header written now reads back as written");
    }

    [TestMethod]
    public void LayerNormGruNormalizesBothProducts()
    {
        manual_seed(22);
        using var scope = NewDisposeScope();
        using var cell = new QuantizedGruCell("gru", In, Options(RecurrentCellKind.Gru, Hidden, normalization: RecurrentNormalization.Layer), Float, Float);
        Assert.AreEqual(3 * Hidden, cell.InputLayerNorm!.Gain.shape[0]);
        Assert.AreEqual(3, cell.InputLayerNorm.Groups, "per gate by default (Hou et al.)");
        var x = randn(1, Batch, In) * 10;
        var h0 = randn(Batch, Hidden) * 10;

        var (_, h, _) = cell.Forward(x, h0, null);

        static Tensor Standardize(Tensor v) => (v - v.mean(new long[] { -1 }, keepdim: true)) / (v.var(-1, unbiased: false, keepdim: true) + 1e-5).sqrt();
        static Tensor Ln(Tensor v) => cat(Enumerable.Range(0, 3).Select(k => Standardize(v.narrow(1, k * Hidden, Hidden))).ToArray(), 1);
        var gi = Ln(x[0].mm(cell.WeightIh.t())) + cell.BiasIh;
        var gh = Ln(h0.mm(cell.WeightHh.t())) + cell.BiasHh;
        var r = (gi.narrow(1, 0, Hidden) + gh.narrow(1, 0, Hidden)).sigmoid();
        var z = (gi.narrow(1, Hidden, Hidden) + gh.narrow(1, Hidden, Hidden)).sigmoid();
        var n = (gi.narrow(1, 2 * Hidden, Hidden) + r * gh.narrow(1, 2 * Hidden, Hidden)).tanh();
        AssertClose((1 - z) * n + z * h0, h, 1e-5, "h");
    }

    [TestMethod]
    public void BatchNormTrainsWithBatchStatisticsAndEvaluatesWithRunningOnes()
    {
        manual_seed(23);
        using var scope = NewDisposeScope();
        using var norm = new RecurrentBatchNorm("bn", 8, steps: 1);
        AssertClose(full(8, 0.1f), norm.Gain, 0, "Cooijmans et al.: gain starts at 0.1");
        AssertClose(zeros(8), norm.Bias, 0, "bias starts at 0");
        var x = randn(Batch, 8) * 2 + 1;

        var y = norm.Forward(x, 0);
        var mean = x.mean(new long[] { 0 });
        var expected = (x - mean) / (x.var(0, unbiased: false) + 1e-5).sqrt() * 0.1;
        AssertClose(expected, y, 1e-5, "training output");
        AssertClose(mean * 0.1, norm.RunningMean[0], 1e-6, "running mean");
        AssertClose(0.9 + x.var(0) * 0.1, norm.RunningVar[0], 1e-5, "running variance (unbiased)");

        norm.eval();
        var e = norm.Forward(x[..1], 0);
        AssertClose((x[..1] - norm.RunningMean[0]) / (norm.RunningVar[0] + 1e-5).sqrt() * 0.1, e, 1e-5, "evaluation uses running statistics");
    }

    [TestMethod]
    public void BatchNormPerStepKeepsStatisticsPerStepAndSharedKeepsOneSet()
    {
        manual_seed(24);
        using var scope = NewDisposeScope();
        var perStepOptions = Options(RecurrentCellKind.Lstm, Hidden, normalization: RecurrentNormalization.BatchPerStep);
        perStepOptions.MaxNormalizedSteps = 5;
        using var perStep = new QuantizedRecurrentStack("per-step", In, perStepOptions, Sign, Float);
        using var shared = new QuantizedRecurrentStack("shared", In, Options(RecurrentCellKind.Lstm, Hidden, normalization: RecurrentNormalization.BatchShared), Sign, Float);
        Assert.IsFalse(perStep.UsesFusedKernel);
        Assert.IsFalse(shared.UsesFusedKernel);
        var x = randn(Time, Batch, In) + 0.5;

        perStep.Forward(x, null);
        shared.Forward(x, null);

        foreach (var bn in new[] { perStep.Layers[0].InputBatchNorm!, perStep.Layers[0].HiddenBatchNorm! })
        {
            CollectionAssert.AreEqual(new long[] { 5, 4 * Hidden }, bn.RunningMean.shape);
            for (int t = 1; t < Time; t++)
                Assert.IsTrue(MaxAbsDifference(bn.RunningMean[t], bn.RunningMean[t - 1]) > 1e-4, $"{bn.GetName()}: steps {t - 1} and {t} keep different means");
            AssertClose(zeros(2, 4 * Hidden), bn.RunningMean[Time..], 0, "steps never seen stay at 0");
            AssertClose(ones(2, 4 * Hidden), bn.RunningVar[Time..], 0, "steps never seen stay at 1");
        }
        // The input product's mean at step t is the per-step batch mean: W x_t averaged over the batch, times momentum.
        var wih = SignOf(perStep.Layers[0].WeightIh);
        for (int t = 0; t < Time; t++)
            AssertClose(x[t].mm(wih.t()).mean(new long[] { 0 }) * 0.1, perStep.Layers[0].InputBatchNorm!.RunningMean[t], 1e-5, $"input mean at step {t}");

        var sharedBn = shared.Layers[0].InputBatchNorm!;
        CollectionAssert.AreEqual(new long[] { 1, 4 * Hidden }, sharedBn.RunningMean.shape);
        Assert.IsTrue(sharedBn.RunningMean.abs().sum().item<float>() > 0, "shared statistics updated");
        Assert.IsTrue(MaxAbsDifference(sharedBn.RunningMean[0], perStep.Layers[0].InputBatchNorm!.RunningMean[0]) > 1e-4,
            "shared statistics average over every step");
    }

    [TestMethod]
    public void BatchNormStepsPastTheLastSetReuseIt()
    {
        manual_seed(25);
        using var scope = NewDisposeScope();
        using var norm = new RecurrentBatchNorm("bn", 3, steps: 2);
        norm.Forward(randn(Batch, 3) + 5, 7);
        AssertClose(zeros(3), norm.RunningMean[0], 0, "set 0 untouched");
        Assert.IsTrue(norm.RunningMean[1].min().item<float>() > 0.2, "step 7 updated the last set");
    }

    [TestMethod]
    public void BatchNormSharedSetFoldsStepsInTheInputsPrecision()
    {
        // One shared set, three steps in one call, float64 throughout: running mean = sum_i 0.1 * 0.9^(2 - i) * mean_i
        // (from 0), by hand in double. Fold weights held in float32 were off by about 1e-8 of the mean.
        using var scope = NewDisposeScope();
        var defaultType = get_default_dtype();
        set_default_dtype(ScalarType.Float64);
        RecurrentBatchNorm norm;
        try { norm = new RecurrentBatchNorm("bn", 1, steps: 1); }
        finally { set_default_dtype(defaultType); }
        using var _ = norm;
        double[][] steps = { new[] { 1.0, 2.0 }, new[] { 10.0, 30.0 }, new[] { 100.0, 300.0 } };
        norm.ForwardSteps(tensor(steps.SelectMany(v => v).ToArray(), dtype: ScalarType.Float64).view(3, 2, 1));
        double expected = 0;
        foreach (var step in steps) expected = 0.9 * expected + 0.1 * step.Average();
        Assert.AreEqual(ScalarType.Float64, norm.RunningMean.dtype);
        Assert.AreEqual(expected, norm.RunningMean.item<double>(), 1e-12 * expected);
    }

    [TestMethod]
    [DataRow(1, 4)]
    [DataRow(2, 5)]
    [DataRow(6, 3)]
    public void BatchNormOfAllStepsAtOnceEqualsOneStepAfterAnother(int sets, int time)
    {
        // ForwardSteps (the cell loop's input side) against Forward called per step in order: outputs, gradients,
        // running statistics after training, and outputs in evaluation.
        manual_seed(26);
        using var scope = NewDisposeScope();
        using var stepwise = new RecurrentBatchNorm("bn", 3, sets);
        using var batched = new RecurrentBatchNorm("bn", 3, sets);
        using (no_grad())
        {
            var gain = rand(3) + 0.5;
            var bias = randn(3);
            foreach (var norm in new[] { stepwise, batched })
            {
                norm.Gain.copy_(gain);
                norm.Bias.copy_(bias);
            }
        }
        var x = (randn(time, Batch, 3) * 2 + arange(time).reshape(time, 1, 1)).requires_grad_(true);
        var upstream = randn(time, Batch, 3);

        var expected = stack(Enumerable.Range(0, time).Select(t => stepwise.Forward(x[t], t)).ToArray(), 0);
        var expectedInputGradient = autograd.grad(new[] { (expected * upstream).sum() }, new[] { x, stepwise.Gain, stepwise.Bias });
        var actual = batched.ForwardSteps(x);
        var actualInputGradient = autograd.grad(new[] { (actual * upstream).sum() }, new[] { x, batched.Gain, batched.Bias });

        AssertClose(expected, actual, 1e-5, "training output");
        for (int k = 0; k < 3; k++) AssertClose(expectedInputGradient[k], actualInputGradient[k], 1e-4, $"gradient {k}");
        AssertClose(stepwise.RunningMean, batched.RunningMean, 1e-5, "running means");
        AssertClose(stepwise.RunningVar, batched.RunningVar, 1e-5, "running variances");
        Assert.IsTrue(MaxAbsDifference(zeros(sets, 3), batched.RunningMean) > 0.05, "training moved the running means");

        stepwise.eval();
        batched.eval();
        using var noGrad = no_grad();
        var probe = randn(time, Batch, 3);
        AssertClose(stack(Enumerable.Range(0, time).Select(t => stepwise.Forward(probe[t], t)).ToArray(), 0), batched.ForwardSteps(probe), 1e-5, "evaluation output");
    }

    [TestMethod]
    public void BatchNormEvaluationIsIndependentOfTheBatch()
    {
        manual_seed(26);
        using var scope = NewDisposeScope();
        using var net = new QuantizedRecurrentStack("bn", In, Options(RecurrentCellKind.Gru, Hidden, layers: 2, normalization: RecurrentNormalization.BatchPerStep), Sign, Float);
        var x = randn(Time, Batch, In);
        for (int i = 0; i < 3; i++) net.Forward(randn(Time, Batch, In), null);

        net.eval();
        var (all, _) = net.Forward(x, null);
        var (one, _) = net.Forward(x[.., 1..2], null);
        AssertClose(all[.., 1..2], one, 1e-5, "sequence 1 alone vs in the batch");
    }

    [TestMethod]
    public void BatchNormWithOneSequenceInTrainingGivesAClearError()
    {
        using var scope = NewDisposeScope();
        foreach (var normalization in new[] { RecurrentNormalization.BatchShared, RecurrentNormalization.BatchPerStep })
        {
            using var net = new QuantizedRecurrentStack("bn", In, Options(RecurrentCellKind.Lstm, Hidden, normalization: normalization));
            var x = randn(Time, 1, In);
            var e = Assert.ThrowsExactly<InvalidOperationException>(() => net.Forward(x, null));
            StringAssert.Contains(e.Message, "at least 2 sequences");
            StringAssert.Contains(e.Message, normalization.ToString());
            net.eval();
            var (output, _) = net.Forward(x, null);
            CollectionAssert.AreEqual(new long[] { Time, 1, Hidden }, output.shape);
        }
    }

    [TestMethod]
    public void WeightNormRowNormsEqualTheGain()
    {
        manual_seed(27);
        using var scope = NewDisposeScope();
        using var cell = new QuantizedLstmCell("lstm", In, Options(RecurrentCellKind.Lstm, Hidden, normalization: RecurrentNormalization.Weight), Sign, Float);
        Assert.IsTrue(cell.UsesFusedKernel, "weight normalization keeps the fused kernel");
        var norm = cell.WeightIhNorm!;
        AssertClose(RowNorms(cell.WeightIh), norm.Gain, 1e-6, "g starts at the float weight's row norms");

        var (wih, whh) = cell.EffectiveWeights();
        AssertClose(norm.Gain, RowNorms(wih), 1e-5, "row norms of W_ih");
        AssertClose(cell.WeightHhNorm!.Gain, RowNorms(whh), 1e-5, "row norms of W_hh");
        var q = SignOf(cell.WeightIh);
        AssertClose(q / RowNorms(q).unsqueeze(1), wih / norm.Gain.unsqueeze(1), 1e-6, "direction is Q(W)'s");

        using (no_grad()) norm.Gain.copy_(rand(norm.Gain.shape) * 3);
        (wih, _) = cell.EffectiveWeights();
        AssertClose(norm.Gain, RowNorms(wih), 1e-5, "row norms follow g");

        wih.sum().backward();
        Assert.IsTrue(norm.Gain.grad!.abs().sum().item<float>() > 0, "g is learned");
        Assert.IsTrue(cell.WeightIh.grad!.abs().sum().item<float>() > 0, "gradient reaches the float weight");
    }

    [TestMethod]
    public void WeightNormPassesAZeroRowsGradientOnUnscaled()
    {
        // g from the initial rows (6, 8), (1, 1), (0, 2): 10, sqrt 2, 2. Quantized rows w: (3, 4) (norm 5), (0, 0), (1, 0).
        // Output g w / ||w||: (6, 8), (0, 0), (2, 0). With L = sum(out * c), c = ((1, 2), (3, 4), (5, 6)), by hand:
        // dL/dw = g / n (c - (w . c) w / n^2): row 0 2 ((1, 2) - 11/25 (3, 4)) = (-0.64, 0.48); row 2 2 ((5, 6) - 5 (1, 0)) =
        // (0, 12); the zero row passes c on unscaled, (3, 4) (g / 1e-12 times c before, about 4e12). dL/dg = (w / n) . c:
        // 2.2, 0 and 5.
        using var scope = NewDisposeScope();
        using var norm = new WeightNorm("wn", tensor(new double[,] { { 6, 8 }, { 1, 1 }, { 0, 2 } }));
        var w = tensor(new double[,] { { 3, 4 }, { 0, 0 }, { 1, 0 } }).requires_grad_();
        var output = norm.forward(w);
        CollectionAssert.AreEqual(new double[] { 6, 8, 0, 0, 2, 0 }, output.data<double>().ToArray());
        (output * tensor(new double[,] { { 1, 2 }, { 3, 4 }, { 5, 6 } })).sum().backward();
        var expected = new double[] { -0.64, 0.48, 3, 4, 0, 12 };
        var actual = w.grad!.data<double>().ToArray();
        for (int k = 0; k < expected.Length; k++) Assert.AreEqual(expected[k], actual[k], 1e-12, $"dL/dw[{k}]");
        var gain = norm.Gain.grad!.data<double>().ToArray();
        Assert.AreEqual(2.2, gain[0], 1e-12);
        Assert.AreEqual(0, gain[1], 0.0, "a zero row's gain gets no gradient (and no NaN)");
        Assert.AreEqual(5, gain[2], 1e-12);
    }

    [TestMethod]
    public void OnlyWeightNormalizationKeepsTheFusedKernel()
    {
        foreach (var normalization in Enum.GetValues<RecurrentNormalization>())
        {
            using var net = new QuantizedRecurrentStack("s", In, Options(RecurrentCellKind.Gru, Hidden, normalization: normalization), Sign, Float) { ForceFusedKernel = true };
            bool expected = normalization is RecurrentNormalization.None or RecurrentNormalization.Weight;
            Assert.AreEqual(expected, net.UsesFusedKernel, normalization.ToString());
        }
    }

    private static Tensor SignOf(Tensor w) => w.detach().sign() * w.detach().abs().mean();

    private static Tensor RowNorms(Tensor w) => w.square().sum(1).sqrt();
}
