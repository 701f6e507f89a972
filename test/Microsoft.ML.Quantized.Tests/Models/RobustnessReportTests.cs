using TorchSharp;

namespace Microsoft.ML.Quantized.Tests;

[TestClass]
public sealed class RobustnessReportTests
{
    private static readonly string Train = TinyCorpus.Text(160);
    private static readonly string Valid = TinyCorpus.Text(25, seed: 19);
    private static readonly Vocabulary Chars = Vocabulary.FromCharacters(Train + Valid);

    [TestMethod]
    public void ReportOnATinyCharModelHasEveryRowAndSensibleValues()
    {
        using var model = QuantizedLanguageModel.Train(Chars, Train, null, TinyCorpus.Model(), QuantizedLanguageModelTests.WithSteps(TinyCorpus.Training(2), 12));
        var report = new RobustnessReportBuilder().Build(model, Valid);

        Assert.AreEqual("perplexity", report.MetricName);
        CollectionAssert.AreEqual(new[] { "float", "2-bit", "3-bit", "4-bit", "5-bit", "6-bit", "8-bit" }, report.BitWidths.Select(r => r.Label).ToArray());
        CollectionAssert.AreEqual(new[] { 32, 2, 3, 4, 5, 6, 8 }, report.BitWidths.Select(r => r.Bits).ToArray());
        CollectionAssert.AreEqual(new[] { "exact step", "step -5%", "step -2%", "step +2%", "step +5%", "power-of-two step" }, report.StepSizes.Select(r => r.Label).ToArray());
        // The default step is the least-error one (KURE perturbs an optimized step).
        CollectionAssert.AreEqual(new[] { "uniform4-mse", "uniform4-mse@0.95", "uniform4-mse@0.98", "uniform4-mse@1.02", "uniform4-mse@1.05", "uniform4-pow2-mse" }, report.StepSizes.Select(r => r.Quantizer).ToArray());
        Assert.IsTrue(report.BitWidths.Concat(report.StepSizes).All(r => double.IsFinite(r.Metric) && r.Metric >= 1));
        Assert.AreEqual(model.Evaluate(Valid).Perplexity, report.Float.Metric, 1e-9);
        Assert.AreSame(report.Float, report.AsTrained, "a float model as trained is its float row");
        Assert.IsTrue(report.Float.Metric <= report.AtBits(2)!.Metric, $"float {report.Float.Metric:F3} vs 2-bit {report.AtBits(2)!.Metric:F3}");
        Assert.IsTrue(report.AtBits(2)!.WeightError > report.AtBits(8)!.WeightError);
        Assert.AreEqual(report.AtBits(4)!.Metric, report.StepSizes[0].Metric, 0.0);

        CollectionAssert.AreEqual(new[] { "layers.0.weight_ih", "layers.0.weight_hh", "embedding", "decoder.weight" }, report.Weights.Select(w => w.Name).ToArray());
        Assert.IsTrue(report.Weights.All(w => w.Kurtosis >= 1 && w.Kurtosis < 10));
        Assert.AreEqual(5, report.Gates.Count, "LSTM: input, forget, candidate, output, cell");
        Assert.IsTrue(report.Gates.All(g => g.Count > 0 && double.IsFinite(g.PreActivationKurtosis) && double.IsFinite(g.PostActivationKurtosis)));
        Assert.IsTrue(model.Network.Recurrent.Layers.All(l => l.ForwardObserver is null));

        var markdown = report.ToMarkdown();
        StringAssert.Contains(markdown, "| 2-bit | `uniform2-mse` | 2 |");
        StringAssert.Contains(markdown, "| step +5% | `uniform4-mse@1.05` |");
        StringAssert.Contains(markdown, "`layers.0.weight_hh`");
        StringAssert.Contains(markdown, "| 0 | forget |");
        Assert.AreEqual(markdown, report.ToString());
    }

    [TestMethod]
    public void AClassifierReportScoresAccuracyAtEveryBitWidth()
    {
        var train = SequenceClassifierTestData.SignOfSum(300, seed: 3);
        var test = SequenceClassifierTestData.SignOfSum(100, seed: 4);
        using var model = QuantizedSequenceClassifier.Train(train.Sequences, train.Labels, null, null,
            SequenceClassifierTestData.Model(cell: RecurrentCellKind.Gru), SequenceClassifierTestData.Training(2));
        var report = new RobustnessReportBuilder().Build(model, test.Sequences, test.Labels);

        Assert.AreEqual("accuracy", report.MetricName);
        CollectionAssert.AreEqual(new[] { 32, 2, 3, 4, 5, 6, 8 }, report.BitWidths.Select(r => r.Bits).ToArray());
        Assert.AreEqual(model.Evaluate(test.Sequences, test.Labels).Accuracy, report.Float.Metric, 0.0);
        Assert.IsTrue(report.BitWidths.Concat(report.StepSizes).All(r => r.Metric is >= 0 and <= 1));
        Assert.IsTrue(report.AtBits(8)!.Metric > 0.8, $"8-bit accuracy {report.AtBits(8)!.Metric}");
        Assert.IsTrue(report.AtBits(2)!.WeightError > report.AtBits(8)!.WeightError);
        Assert.AreEqual(3, report.Gates.Count, "GRU: reset, update, candidate");
        Assert.IsTrue(report.Weights.Any(w => w.Name.Contains("weight_hh", StringComparison.Ordinal)));
    }

    [TestMethod]
    public void AQuantizedGruModelGetsAnAsTrainedRowAndACustomMetric()
    {
        using var model = QuantizedLanguageModel.Train(Chars, Train, null, TinyCorpus.Model(QuantizerKind.TernaryWeightNet, cell: RecurrentCellKind.Gru),
            QuantizedLanguageModelTests.WithSteps(TinyCorpus.Training(1), 10));
        var tokens = Chars.Encode(Valid);
        var builder = new RobustnessReportBuilder { BitWidths = new List<int> { 8, 3, 3 }, StepSizeMultipliers = new List<double> { 1.1 }, IncludePowerOfTwoStep = false, PerturbationBits = 5, MinimumErrorStep = false };
        var report = builder.Build(model, m => m.Evaluate(tokens).BitsPerToken, "bits per character");
        CollectionAssert.AreEqual(new[] { "float", "as trained", "3-bit", "8-bit" }, report.BitWidths.Select(r => r.Label).ToArray());
        Assert.AreEqual("twn", report.TrainedQuantizer);
        Assert.AreEqual(model.Evaluate(tokens).BitsPerToken, report.BitWidths[1].Metric, 1e-12);
        Assert.AreSame(report.BitWidths[1], report.AsTrained, "the twn row, not the float one");
        CollectionAssert.AreEqual(new[] { "uniform5", "uniform5@1.1" }, report.StepSizes.Select(r => r.Quantizer).ToArray());
        Assert.AreEqual(3, report.Gates.Count, "GRU: reset, update, candidate");
        StringAssert.Contains(report.ToMarkdown(2), "## Post-training quantization (bits per character");
        Assert.AreEqual(0, report.PerTensor.Count, "none by default");

        builder.PerTensorBitWidths = new List<int> { 4 };
        var perTensor = builder.Build(model, m => m.Evaluate(tokens).BitsPerToken, "bits per character").PerTensor;
        CollectionAssert.AreEqual(new[] { "layers.0.weight_ih", "layers.0.weight_ih, reset gate", "layers.0.weight_ih, update gate", "layers.0.weight_ih, candidate gate" },
            perTensor.Take(4).Select(r => r.Label).ToArray());
        Assert.AreEqual(8, perTensor.Count);
        builder.PerTensorBitWidths.Clear();

        builder.MinimumErrorStep = true;
        builder.RecordGates = false;
        var clipped = builder.Build(model, m => m.Evaluate(tokens).BitsPerToken, "bits per character");
        CollectionAssert.AreEqual(new[] { "none", "twn", "uniform3-mse", "uniform8-mse" }, clipped.BitWidths.Select(r => r.Quantizer).ToArray());
        CollectionAssert.AreEqual(new[] { "uniform5-mse", "uniform5-mse@1.1" }, clipped.StepSizes.Select(r => r.Quantizer).ToArray());
        Assert.IsLessThanOrEqualTo(report.AtBits(3)!.WeightError, clipped.AtBits(3)!.WeightError, "the least-error step never has a larger weight error");
        Assert.AreEqual(0, clipped.Gates.Count);
    }

    [TestMethod]
    public void ActivationBitWidthsScoreTheModelWithQuantizedGatesUnderItsOwnAndUnderFourBitWeights()
    {
        using var model = QuantizedLanguageModel.Train(Chars, Train, null, TinyCorpus.Model(), QuantizedLanguageModelTests.WithSteps(TinyCorpus.Training(1), 12));
        var builder = new RobustnessReportBuilder
        {
            BitWidths = new List<int> { 4 }, StepSizeMultipliers = new List<double>(), IncludePowerOfTwoStep = false, RecordGates = false,
            ActivationBitWidths = new List<int> { 3, 2, 3 },
        };
        var report = builder.Build(model, Valid);
        CollectionAssert.AreEqual(new[] { "activations 2-bit", "activations 3-bit", "activations 2-bit", "activations 3-bit" }, report.Activations.Select(r => r.Label).ToArray());
        CollectionAssert.AreEqual(new[] { "none", "none", "uniform4-mse", "uniform4-mse" }, report.Activations.Select(r => r.Quantizer).ToArray());
        CollectionAssert.AreEqual(new[] { 32, 32, 4, 4 }, report.Activations.Select(r => r.Bits).ToArray());

        // Each row is the model with those weights and activations, scored on its own.
        var fourBit = new QuantizerOptions { Kind = QuantizerKind.Uniform, Bits = 4, MinimumErrorStep = true };
        var expected = new[] { (new QuantizerOptions(), 2), (new QuantizerOptions(), 3), (fourBit, 2), (fourBit, 3) };
        for (int r = 0; r < expected.Length; r++)
        {
            using var copy = model.WithQuantization(expected[r].Item1, new QuantizerOptions { Kind = QuantizerKind.Uniform, Bits = expected[r].Item2 });
            Assert.AreEqual(copy.Evaluate(Valid).Perplexity, report.Activations[r].Metric, 1e-9, report.Activations[r].Label);
        }
        Assert.IsTrue(report.Activations[0].Metric > report.Float.Metric * 1.01, $"2-bit activations {report.Activations[0].Metric:F3} vs float {report.Float.Metric:F3}");
        StringAssert.Contains(report.ToMarkdown(), "| activations 2-bit | `none` | 32 |");
        Assert.AreEqual(0, new RobustnessReportBuilder { BitWidths = new List<int> { 4 } }.Build(model, Valid).Activations.Count, "none by default");

        var bad = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new RobustnessReportBuilder { ActivationBitWidths = new List<int> { 1 } }.Build(model, Valid));
        Assert.AreEqual("RobustnessReportBuilder.ActivationBitWidths", bad.ParamName);
        var options = TinyCorpus.Model();
        options.Recurrent.ActivationQuantizer = new QuantizerOptions { Kind = QuantizerKind.BernoulliTernary };
        using var btq = QuantizedLanguageModel.Train(Chars, Train, null, options, QuantizedLanguageModelTests.WithSteps(TinyCorpus.Training(1), 1));
        var trainedQuantized = Assert.ThrowsExactly<ArgumentException>(() => new RobustnessReportBuilder { ActivationBitWidths = new List<int> { 4 } }.Build(btq, Valid));
        StringAssert.Contains(trainedQuantized.Message, "trained with quantized activations (btq)");
    }

    [TestMethod]
    public void PerTensorRowsScoreOneTensorOrOneGateBlockAtKBitsWithTheRestFloat()
    {
        using var model = QuantizedLanguageModel.Train(Chars, Train, null, TinyCorpus.Model(), QuantizedLanguageModelTests.WithSteps(TinyCorpus.Training(1), 12));
        var builder = new RobustnessReportBuilder
        {
            BitWidths = new List<int> { 3 }, StepSizeMultipliers = new List<double>(), IncludePowerOfTwoStep = false, RecordGates = false,
            MinimumErrorStep = false, PerTensorBitWidths = new List<int> { 3, 2, 3 },
        };
        var report = builder.Build(model, Valid);
        var names = new[] { "layers.0.weight_ih", "layers.0.weight_hh" }
            .SelectMany(t => new[] { t }.Concat(new[] { "input", "forget", "candidate", "output" }.Select(g => $"{t}, {g} gate"))).ToArray();
        CollectionAssert.AreEqual(names.Concat(names).ToArray(), report.PerTensor.Select(r => r.Label).ToArray(), "2 bits then 3; float embedding and decoder have no rows");
        CollectionAssert.AreEqual(Enumerable.Repeat(2, 10).Concat(Enumerable.Repeat(3, 10)).ToArray(), report.PerTensor.Select(r => r.Bits).ToArray());
        Assert.IsTrue(report.PerTensor.All(r => r.Quantizer == "uniform" + r.Bits));

        // Each row by hand: the float model with that tensor's rows replaced by round(w / s) * s, clamped to +-(2^(k-1) - 1)
        // steps, where s = max |w| / (2^(k-1) - 1) over the whole tensor (the uniform k-bit model's values).
        using var copy = model.WithQuantization(new QuantizerOptions());
        var layer = copy.Network.Recurrent.Layers[0];
        long hidden = layer.HiddenSize;
        int row = 0;
        foreach (int bits in new[] { 2, 3 })
        {
            foreach (var weight in new[] { layer.WeightIh, layer.WeightHh })
            {
                using var scope = torch.NewDisposeScope();
                using var noGrad = torch.no_grad();
                var original = weight.detach().clone();
                double levels = (1 << (bits - 1)) - 1;
                var step = original.abs().max().item<float>() / levels;
                var quantized = (original / step).round().clamp(-levels, levels) * step;
                foreach (var (first, count) in new[] { (0L, 4 * hidden), (0L, hidden), (hidden, hidden), (2 * hidden, hidden), (3 * hidden, hidden) })
                {
                    weight.narrow(0, first, count).copy_(quantized.narrow(0, first, count));
                    var perTensor = report.PerTensor[row++];
                    Assert.AreEqual(copy.Evaluate(Valid).Perplexity, perTensor.Metric, 1e-6 * perTensor.Metric, perTensor.Label);
                    var w = original.narrow(0, first, count);
                    double error = Math.Sqrt((quantized.narrow(0, first, count) - w).pow(2).sum().item<float>() / w.pow(2).sum().item<float>());
                    Assert.AreEqual(error, perTensor.WeightError, 1e-5, perTensor.Label);
                    weight.copy_(original);
                }
            }
        }
        Assert.AreNotEqual(report.Float.Metric, report.PerTensor[0].Metric, "the rows are quantized");
        Assert.AreEqual(model.Evaluate(Valid).Perplexity, report.Float.Metric, 1e-9, "the model itself is untouched");

        var markdown = report.ToMarkdown();
        StringAssert.Contains(markdown, "Weight tensors quantized one at a time");
        var whole = report.PerTensor.First(r => r.Bits == 3);
        double share = (whole.Metric - report.Float.Metric) / (report.AtBits(3)!.Metric - report.Float.Metric) * 100;
        StringAssert.Contains(markdown, $"| `layers.0.weight_ih` | 3 | {whole.Metric.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture)} |");
        Assert.AreEqual(share / 100, report.ShareOfCost(whole), 1e-12);
        Assert.IsTrue(double.IsNaN(report.ShareOfCost(report.PerTensor[0])), "no uniform 2-bit row in this report");
        StringAssert.Contains(markdown, $"| {share.ToString("0", System.Globalization.CultureInfo.InvariantCulture)} % |");
        StringAssert.Contains(markdown, "| `layers.0.weight_ih, forget gate` | 2 |");
        StringAssert.Contains(markdown, "| n/a |", "no whole-model 2-bit row to take a share of");
    }

    [TestMethod]
    public void BadSettingsAreRejectedWithTheSettingNamed()
    {
        using var model = QuantizedLanguageModel.Train(Chars, Train, null, TinyCorpus.Model(), QuantizedLanguageModelTests.WithSteps(TinyCorpus.Training(1), 1));
        var bits = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new RobustnessReportBuilder { BitWidths = new List<int> { 4, 9 } }.Build(model, Valid));
        Assert.AreEqual("RobustnessReportBuilder.BitWidths", bits.ParamName);
        StringAssert.Contains(bits.Message, "2-8");
        var perturbation = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new RobustnessReportBuilder { PerturbationBits = 1 }.Build(model, Valid));
        Assert.AreEqual("RobustnessReportBuilder.PerturbationBits", perturbation.ParamName);
        var multiplier = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new RobustnessReportBuilder { StepSizeMultipliers = new List<double> { 0 } }.Build(model, Valid));
        Assert.AreEqual("RobustnessReportBuilder.StepSizeMultipliers", multiplier.ParamName);
        var perTensor = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new RobustnessReportBuilder { PerTensorBitWidths = new List<int> { 9 } }.Build(model, Valid));
        Assert.AreEqual("RobustnessReportBuilder.PerTensorBitWidths", perTensor.ParamName);
    }
}
