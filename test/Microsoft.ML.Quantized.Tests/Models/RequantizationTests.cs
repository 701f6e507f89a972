using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized.Tests;

[TestClass]
public sealed class RequantizationTests
{
    private static readonly string Train = TinyCorpus.Text(120);
    private static readonly string Valid = TinyCorpus.Text(20, seed: 13);
    private static readonly Vocabulary Chars = Vocabulary.FromCharacters(Train + Valid);

    private static QuantizerOptions Uniform(int bits) => new() { Kind = QuantizerKind.Uniform, Bits = bits };

    private static double RecurrentError(QuantizedLanguageModel m) => QuantizationError.Relative(m.Network.Recurrent.QuantizedWeights());

    [TestMethod]
    public void ReconstructionErrorFallsAsBitsRiseAndShadowWeightsAreShared()
    {
        using var model = QuantizedLanguageModel.Train(Chars, Train, null, TinyCorpus.Model(), QuantizedLanguageModelTests.WithSteps(TinyCorpus.Training(1), 5));
        double previous = double.PositiveInfinity;
        double floatEval = model.Evaluate(Valid).CrossEntropy;
        for (int bits = 2; bits <= 8; bits++)
        {
            using var quantized = model.WithQuantization(Uniform(bits));
            Assert.AreEqual($"uniform{bits}", quantized.Options.Recurrent.WeightQuantizer.ToString());
            Assert.IsTrue(quantized.Network.Recurrent.Layers.All(l => l.WeightIhQuantizer.Bits == bits));
            double error = RecurrentError(quantized);
            Assert.IsTrue(error < previous, $"{bits} bits: error {error:E3} should be below {previous:E3}");
            Assert.IsTrue(error > 0);
            previous = error;
            AssertSameFloatWeights(model, quantized);
            Assert.IsTrue(double.IsFinite(quantized.Evaluate(Valid).CrossEntropy));
        }
        Assert.IsTrue(previous < 0.02, $"8-bit error {previous:E3}");
        Assert.AreEqual(floatEval, model.Evaluate(Valid).CrossEntropy, 0.0, "the source model is left as it is");
    }

    [TestMethod]
    public void AFloatModelRequantizedToFloatKeepsItsWeightsAndEvaluation()
    {
        using var model = QuantizedLanguageModel.Train(Chars, Train, null, TinyCorpus.Model(normalization: RecurrentNormalization.Layer), QuantizedLanguageModelTests.WithSteps(TinyCorpus.Training(1), 5));
        using var copy = model.WithQuantization(new QuantizerOptions());
        AssertSameFloatWeights(model, copy);
        foreach (var (name, tensor) in model.Network.state_dict())
            Assert.IsTrue(Same(tensor, copy.Network.state_dict()[name]), name);
        Assert.AreEqual(model.Evaluate(Valid).CrossEntropy, copy.Evaluate(Valid).CrossEntropy, 0.0);
        Assert.AreEqual(0.0, RecurrentError(copy));
        Assert.AreNotSame(model.Network, copy.Network);
    }

    [TestMethod]
    public void StepMultiplierPowerOfTwoAndLearnedStepsAreApplied()
    {
        using var model = QuantizedLanguageModel.Train(Chars, Train, null, TinyCorpus.Model(QuantizerKind.TernaryWeightNet), QuantizedLanguageModelTests.WithSteps(TinyCorpus.Training(1), 5));
        using var exact = model.WithQuantization(Uniform(4));
        var coarseOptions = Uniform(4);
        coarseOptions.StepSizeMultiplier = 1.05;
        using var coarse = model.WithQuantization(coarseOptions);
        var pow2Options = Uniform(4);
        pow2Options.PowerOfTwoScale = true;
        using var pow2 = model.WithQuantization(pow2Options);
        Assert.AreEqual("uniform4@1.05", coarse.Options.Recurrent.WeightQuantizer.ToString());
        using (var scope = NewDisposeScope())
        {
            var w = model.Network.Recurrent.Layers[0].WeightHh;
            var step = exact.Network.Recurrent.Layers[0].WeightHhQuantizer.Encode(w).Scales.Max();
            var coarseStep = coarse.Network.Recurrent.Layers[0].WeightHhQuantizer.Encode(w).Scales.Max();
            var pow2Step = pow2.Network.Recurrent.Layers[0].WeightHhQuantizer.Encode(w).Scales.Max();
            Assert.AreEqual(1.05 * step, coarseStep, 1e-6);
            Assert.AreEqual(0.0, Math.Log2(pow2Step) % 1, 1e-9, "power of two");
            Assert.IsTrue(pow2Step >= step);
        }

        // A learned step (LSQ) is not carried between configurations: it starts at max |w| / Qp at first use.
        var lsq = new QuantizerOptions { Kind = QuantizerKind.Uniform, Bits = 3, LearnedScale = true };
        using var learned = model.WithQuantization(lsq);
        Assert.IsTrue(double.IsFinite(learned.Evaluate(Valid).CrossEntropy));
        using var again = learned.WithQuantization(lsq);
        var s1 = ((UniformQuantizer)learned.Network.Recurrent.Layers[0].WeightIhQuantizer).Step!;
        var s2 = ((UniformQuantizer)again.Network.Recurrent.Layers[0].WeightIhQuantizer).Step!;
        Assert.IsTrue(Same(s1, s2), "same quantizer: its learned step is copied");
        Assert.AreEqual(learned.Evaluate(Valid).CrossEntropy, again.Evaluate(Valid).CrossEntropy, 0.0);
    }

    [TestMethod]
    public void ALeastErrorStepModelHasSmallerWeightErrorAndSavesAndLoadsIdentically()
    {
        using var model = QuantizedLanguageModel.Train(Chars, Train, null, TinyCorpus.Model(), QuantizedLanguageModelTests.WithSteps(TinyCorpus.Training(1), 5));
        var options = Uniform(3);
        options.MinimumErrorStep = true;
        using var clipped = model.WithQuantization(options);
        using var plain = model.WithQuantization(Uniform(3));
        Assert.AreEqual("uniform3-mse", clipped.Options.Recurrent.WeightQuantizer.ToString());
        Assert.IsLessThanOrEqualTo(RecurrentError(plain), RecurrentError(clipped));

        using var stream = new MemoryStream();
        clipped.Save(stream);
        stream.Position = 0;
        using var loaded = QuantizedLanguageModel.Load(stream);
        Assert.AreEqual("uniform3-mse", loaded.Options.Recurrent.WeightQuantizer.ToString());
        Assert.AreEqual(clipped.Evaluate(Valid).CrossEntropy, loaded.Evaluate(Valid).CrossEntropy, 0.0);
    }

    [TestMethod]
    public void BadQuantizersAreRejectedWithTheOptionNamed()
    {
        using var model = QuantizedLanguageModel.Train(Chars, Train, null, TinyCorpus.Model(), QuantizedLanguageModelTests.WithSteps(TinyCorpus.Training(1), 1));
        var nine = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => model.WithQuantization(Uniform(9)));
        StringAssert.Contains(nine.Message, "weights.Bits = 9");
        var one = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => model.WithQuantization(Uniform(1)));
        StringAssert.Contains(one.Message, "2-8");
        var btq = Assert.ThrowsExactly<ArgumentException>(() => model.WithQuantization(new QuantizerOptions { Kind = QuantizerKind.BernoulliTernary }));
        StringAssert.Contains(btq.Message, "activations");
        var multiplier = new QuantizerOptions { Kind = QuantizerKind.Uniform, StepSizeMultiplier = -1 };
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => model.WithQuantization(multiplier)).Message, "StepSizeMultiplier");
        Assert.ThrowsExactly<ArgumentNullException>(() => model.WithQuantization(null!));
    }

    [TestMethod]
    public void ActivationsRequantizeToAPerStepUniformGridWithTheWeightsUnchanged()
    {
        using var model = QuantizedLanguageModel.Train(Chars, Train, null, TinyCorpus.Model(), QuantizedLanguageModelTests.WithSteps(TinyCorpus.Training(1), 5));
        using var copy = model.WithQuantization(new QuantizerOptions(), Uniform(3));
        Assert.AreEqual("uniform3", copy.Options.Recurrent.ActivationQuantizer.ToString());
        Assert.AreEqual("none", model.Options.Recurrent.ActivationQuantizer.ToString(), "the source model is left as it is");
        AssertSameFloatWeights(model, copy);

        // Hand-worked reference of the first layer: every gate and h rounded, at each step, to multiples of s = max |x| / 3
        // (3 bits: Qp = 2^2 - 1), s taken over that step's batch.
        using (var scope = NewDisposeScope())
        using (var noGrad = no_grad())
        {
            var layer = model.Network.Recurrent.Layers[0];
            int hidden = model.Options.Recurrent.HiddenSize;
            manual_seed(21);
            var x = randn(6, 3, layer.WeightIh.shape[1]);
            var (expected, _) = ReferenceLstm(layer, x, gate: ThreeBits, cell: v => v, hiddenState: ThreeBits);
            var (output, _, _) = copy.Network.Recurrent.Layers[0].Forward(x, zeros(3, hidden), zeros(3, hidden));
            RecurrentTestSupport.AssertClose(expected, output, 1e-5, "3-bit activations");
            Assert.IsTrue(RecurrentTestSupport.MaxAbsDifference(output, model.Network.Recurrent.Layers[0].Forward(x, zeros(3, hidden), zeros(3, hidden)).Output) > 1e-3,
                "the float model's output differs");
        }

        // A later weight-only re-quantization keeps the activation quantizer; float activations give back the float model.
        using var fourBitWeights = copy.WithQuantization(Uniform(4));
        Assert.AreEqual("uniform3", fourBitWeights.Options.Recurrent.ActivationQuantizer.ToString());
        using var back = copy.WithQuantization(new QuantizerOptions(), new QuantizerOptions());
        Assert.AreEqual(model.Evaluate(Valid).CrossEntropy, back.Evaluate(Valid).CrossEntropy, 1e-5);

        var weightKind = Assert.ThrowsExactly<ArgumentException>(() => model.WithQuantization(new QuantizerOptions(), new QuantizerOptions { Kind = QuantizerKind.TernaryWeightNet }));
        Assert.AreEqual("activations", weightKind.ParamName);
        StringAssert.Contains(weightKind.Message, "is a weight quantizer");
    }

    /// <summary>Post-training quantization of the LSTM cell state alone: the gates and hidden state stay float.</summary>
    [TestMethod]
    public void TheCellStateAloneRequantizesToAPerStepUniformGrid()
    {
        using var model = QuantizedLanguageModel.Train(Chars, Train, null, TinyCorpus.Model(), QuantizedLanguageModelTests.WithSteps(TinyCorpus.Training(1), 5));
        using var copy = model.WithQuantization(new QuantizerOptions(), Uniform(3), RecurrentActivations.CellState);
        Assert.AreEqual(RecurrentActivations.CellState, copy.Options.Recurrent.QuantizedActivations);
        Assert.AreEqual(RecurrentActivations.Gates | RecurrentActivations.Hidden, model.Options.Recurrent.QuantizedActivations, "the source model is left as it is");
        using (var scope = NewDisposeScope())
        using (var noGrad = no_grad())
        {
            var layer = model.Network.Recurrent.Layers[0];
            int hidden = model.Options.Recurrent.HiddenSize;
            manual_seed(22);
            var x = randn(6, 3, layer.WeightIh.shape[1]);
            var (expected, c) = ReferenceLstm(layer, x, gate: v => v, cell: ThreeBits, hiddenState: v => v);
            var (output, _, lastCell) = copy.Network.Recurrent.Layers[0].Forward(x, zeros(3, hidden), zeros(3, hidden));
            RecurrentTestSupport.AssertClose(expected, output, 1e-5, "3-bit cell state");
            RecurrentTestSupport.AssertClose(c, lastCell!, 1e-5, "the last cell state on its grid");
        }
        var gru = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() =>
        {
            using var g = QuantizedLanguageModel.Train(Chars, Train, null, TinyCorpus.Model(cell: RecurrentCellKind.Gru), QuantizedLanguageModelTests.WithSteps(TinyCorpus.Training(1), 1));
            g.WithQuantization(new QuantizerOptions(), Uniform(3), RecurrentActivations.CellState);
        });
        StringAssert.Contains(gru.Message, "includes CellState, but a Gru has no cell state");

        // The report's activation rows on the cell state alone: labelled so, each the model re-quantized that way.
        var report = new RobustnessReportBuilder
        {
            BitWidths = new List<int> { 4 }, StepSizeMultipliers = new List<double>(), IncludePowerOfTwoStep = false, RecordGates = false,
            ActivationBitWidths = new List<int> { 3 }, QuantizedActivations = RecurrentActivations.CellState,
        }.Build(model, Valid);
        CollectionAssert.AreEqual(new[] { "cell state 3-bit", "cell state 3-bit" }, report.Activations.Select(r => r.Label).ToArray());
        Assert.AreEqual(copy.Evaluate(Valid).Perplexity, report.Activations[0].Metric, 1e-9);
        Assert.AreNotEqual(report.Float.Metric, report.Activations[0].Metric, "the cell state is quantized");
    }

    /// <summary>Rounds to multiples of s = max |v| / 3 (3 bits: Qp = 2^2 - 1), s taken over the whole tensor (one step's batch).</summary>
    private static Tensor ThreeBits(Tensor v) => (v / (v.abs().max() / 3)).round() * (v.abs().max() / 3);

    /// <summary>
    /// An LSTM layer written out step by step from zero states over <paramref name="x"/> [time, batch, in], each gate output,
    /// the cell state and the hidden state passed through the given function; the outputs stacked and the last cell state.
    /// </summary>
    private static (Tensor Outputs, Tensor Cell) ReferenceLstm(QuantizedRecurrentCell layer, Tensor x, Func<Tensor, Tensor> gate, Func<Tensor, Tensor> cell,
        Func<Tensor, Tensor> hiddenState)
    {
        var h = zeros(x.shape[1], layer.HiddenSize);
        var c = zeros(x.shape[1], layer.HiddenSize);
        var outputs = new List<Tensor>();
        for (int t = 0; t < x.shape[0]; t++)
        {
            var parts = (x[t].matmul(layer.WeightIh.t()) + layer.BiasIh + h.matmul(layer.WeightHh.t()) + layer.BiasHh).chunk(4, 1);
            var (i, f, g, o) = (gate(parts[0].sigmoid()), gate(parts[1].sigmoid()), gate(parts[2].tanh()), gate(parts[3].sigmoid()));
            c = cell(f * c + i * g);
            h = hiddenState(o * c.tanh());
            outputs.Add(h);
        }
        return (stack(outputs), c);
    }

    [TestMethod]
    public void ClassifiersRequantizeToEveryBitWidthFromTheSameShadowWeights()
    {
        var train = SequenceClassifierTestData.SignOfSum(300, seed: 3);
        var test = SequenceClassifierTestData.SignOfSum(100, seed: 4);
        using var model = QuantizedSequenceClassifier.Train(train.Sequences, train.Labels, null, null,
            SequenceClassifierTestData.Model(QuantizerKind.TernaryWeightNet, RecurrentNormalization.Layer, RecurrentCellKind.Gru), SequenceClassifierTestData.Training(2));
        var before = model.Evaluate(test.Sequences, test.Labels);
        double previous = double.PositiveInfinity;
        for (int bits = 2; bits <= 8; bits++)
        {
            using var quantized = model.WithQuantization(Uniform(bits));
            Assert.AreEqual($"uniform{bits}", quantized.Options.Recurrent.WeightQuantizer.ToString());
            double error = QuantizationError.Relative(quantized.Network.Recurrent.QuantizedWeights());
            Assert.IsTrue(error < previous && error > 0, $"{bits} bits: error {error:E3} should be below {previous:E3}");
            previous = error;
            var left = model.Network.WeightMatrices().ToList();
            var right = quantized.Network.WeightMatrices().ToList();
            for (int i = 0; i < left.Count; i++) Assert.IsTrue(Same(left[i].Weight, right[i].Weight), left[i].Name);
            Assert.IsTrue(quantized.Evaluate(test.Sequences, test.Labels).Accuracy > 0.5);
        }
        using var same = model.WithQuantization(new QuantizerOptions { Kind = QuantizerKind.TernaryWeightNet });
        Assert.AreEqual(before, same.Evaluate(test.Sequences, test.Labels), "re-quantized to its own quantizer: the same model");
        Assert.AreEqual(before, model.Evaluate(test.Sequences, test.Labels), "the source model is left as it is");

        using var threeBit = model.WithQuantization(Uniform(3));
        using var loaded = SequenceClassifierTestData.SavedAndLoaded(threeBit);
        Assert.AreEqual(threeBit.Evaluate(test.Sequences, test.Labels), loaded.Evaluate(test.Sequences, test.Labels));
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => model.WithQuantization(Uniform(9))).Message, "weights.Bits = 9");

        // Post-training activation quantization of a classifier: 8 bits keep it close, 2 bits put gates and h on {-s, 0, s}.
        using var eightBit = model.WithQuantization(new QuantizerOptions { Kind = QuantizerKind.TernaryWeightNet }, Uniform(8));
        Assert.AreEqual("uniform8", eightBit.Options.Recurrent.ActivationQuantizer.ToString());
        Assert.AreEqual(before.Accuracy, eightBit.Evaluate(test.Sequences, test.Labels).Accuracy, 0.03);
        using var twoBit = model.WithQuantization(new QuantizerOptions { Kind = QuantizerKind.TernaryWeightNet }, Uniform(2));
        Assert.AreNotEqual(before, twoBit.Evaluate(test.Sequences, test.Labels));
    }

    private static bool Same(Tensor a, Tensor b)
    {
        using var scope = NewDisposeScope();
        return a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();
    }

    private static void AssertSameFloatWeights(QuantizedLanguageModel a, QuantizedLanguageModel b)
    {
        var left = a.Network.WeightMatrices().ToList();
        var right = b.Network.WeightMatrices().ToList();
        Assert.AreEqual(left.Count, right.Count);
        for (int i = 0; i < left.Count; i++)
        {
            Assert.AreEqual(left[i].Name, right[i].Name);
            Assert.IsTrue(Same(left[i].Weight, right[i].Weight), left[i].Name);
            Assert.AreNotEqual(left[i].Weight.Handle, right[i].Weight.Handle, "a copy, not the same tensor");
        }
    }
}
