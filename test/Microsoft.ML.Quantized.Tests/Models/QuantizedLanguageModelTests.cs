using TorchSharp;

namespace Microsoft.ML.Quantized.Tests;

[TestClass]
public sealed class QuantizedLanguageModelTests
{
    private static readonly string Train = TinyCorpus.Text(160);
    private static readonly string Valid = TinyCorpus.Text(30, seed: 11);
    private static readonly Vocabulary Chars = Vocabulary.FromCharacters(Train + Valid);

    [TestMethod]
    [DataRow(QuantizerKind.None, RecurrentNormalization.None, RecurrentCellKind.Lstm)]
    [DataRow(QuantizerKind.TernaryWeightNet, RecurrentNormalization.Layer, RecurrentCellKind.Lstm)]
    [DataRow(QuantizerKind.BinaryConnect, RecurrentNormalization.Weight, RecurrentCellKind.Gru)]
    public void PerplexityFallsClearlyDuringTraining(QuantizerKind kind, RecurrentNormalization normalization, RecurrentCellKind cell)
    {
        using var untrained = QuantizedLanguageModel.Train(Chars, Train, Valid, TinyCorpus.Model(kind, normalization, cell), WithSteps(TinyCorpus.Training(1), 1));
        double before = untrained.Evaluate(Valid).Perplexity;
        using var model = QuantizedLanguageModel.Train(Chars, Train, Valid, TinyCorpus.Model(kind, normalization, cell), TinyCorpus.Training(4));
        double after = model.Evaluate(Valid).Perplexity;
        Assert.IsTrue(before > 8, $"an untrained model should be near uniform over {Chars.Count} characters; got {before:F2}");
        Assert.IsTrue(after < 0.5 * before, $"perplexity should fall clearly: {before:F2} -> {after:F2}");
        Assert.AreEqual(4, model.History.Count);
        Assert.IsTrue(model.History[^1].TrainingLoss < model.History[0].TrainingLoss);
    }

    [TestMethod]
    public void BatchNormRecalibrationGathersStatisticsUnderTheQuantizersEvaluationRule()
    {
        // BTQ draws at random in training and thresholds at 0.5 in evaluation: statistics gathered under the evaluation rule
        // do not depend on the random stream, those of training would.
        var options = TinyCorpus.Model(QuantizerKind.TernaryWeightNet, RecurrentNormalization.BatchPerStep);
        options.Recurrent.ActivationQuantizer = QuantizerRegistry.Parse("btq");
        using var model = QuantizedLanguageModel.Train(Chars, Train, null, options, WithSteps(TinyCorpus.Training(1), 3));
        var tokens = Chars.Encode(Train, skipUnknownCharacters: true);
        var statistics = model.Network.Recurrent.Layers[0].named_buffers().Where(b => b.name.StartsWith("hidden_norm.running", StringComparison.Ordinal)).ToList();
        Assert.HasCount(2, statistics);
        var trained = statistics.Select(b => b.buffer.clone()).ToList();

        torch.manual_seed(1);
        model.RecalibrateBatchNorm(tokens, windows: 3, batchSize: 4);
        var first = statistics.Select(b => b.buffer.clone()).ToList();
        Assert.IsFalse(model.Network.training || model.Network.Recurrent.Layers[0].training, "left in evaluation mode");
        using (torch.no_grad()) for (int k = 0; k < statistics.Count; k++) statistics[k].buffer.copy_(trained[k]);
        torch.manual_seed(2);
        model.RecalibrateBatchNorm(tokens, windows: 3, batchSize: 4);
        for (int k = 0; k < statistics.Count; k++)
        {
            Assert.AreEqual(0f, (first[k] - statistics[k].buffer).abs().max().item<float>(), $"{statistics[k].name}: the same under another random stream");
            Assert.IsGreaterThan(1e-4, (first[k] - trained[k]).abs().max().item<float>(), $"{statistics[k].name} moved");
        }
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => model.RecalibrateBatchNorm(tokens, windows: 0, batchSize: 4));
    }

    [TestMethod]
    public void RecalibrationBeforeValidationIsTheModelRecalibratedAfterTrainingOverTheSameFirstWindows()
    {
        // One epoch trains the same weights with or without TrainingOptions.BatchNormRecalibrationSteps; with it the running
        // statistics are re-estimated over the epoch's first 4 windows before validation. The model trained without it and
        // recalibrated afterwards over the same windows (its own method, its own batcher) must end with the same statistics
        // and score the validation text as the recorded validation loss.
        var options = TinyCorpus.Model(QuantizerKind.TernaryWeightNet, RecurrentNormalization.BatchPerStep);
        var training = WithSteps(TinyCorpus.Training(1), 6);
        using var plain = QuantizedLanguageModel.Train(Chars, Train, Valid, options, training);
        var recalibrating = training.Clone();
        recalibrating.BatchNormRecalibrationSteps = 4;
        using var recalibrated = QuantizedLanguageModel.Train(Chars, Train, Valid, options, recalibrating);

        List<(string Name, torch.Tensor Value)> Statistics(QuantizedLanguageModel model) => model.Network.named_buffers()
            .Where(b => b.name.Contains("running", StringComparison.Ordinal)).Select(b => (b.name, b.buffer)).ToList();
        var asTrained = Statistics(plain).Select(b => b.Value.clone()).ToList();
        Assert.IsNotEmpty(asTrained);
        foreach (var ((name, value), (_, other)) in plain.Network.named_parameters().Zip(recalibrated.Network.named_parameters()))
            Assert.AreEqual(0f, (value - other).abs().max().item<float>(), $"{name}: the weights train the same");

        plain.RecalibrateBatchNorm(Chars.Encode(Train, skipUnknownCharacters: true), windows: 4, batchSize: training.BatchSize);
        var expected = Statistics(plain);
        var actual = Statistics(recalibrated);
        for (int k = 0; k < expected.Count; k++)
        {
            Assert.AreEqual(expected[k].Name, actual[k].Name);
            Assert.IsGreaterThan(1e-4, (expected[k].Value - asTrained[k]).abs().max().item<float>(), $"{expected[k].Name}: recalibration moved it");
            Assert.AreEqual(0f, (expected[k].Value - actual[k].Value).abs().max().item<float>(), $"{expected[k].Name}: the same re-estimate");
        }
        Assert.AreEqual(plain.Evaluate(Valid).CrossEntropy, recalibrated.History.Single().ValidationLoss, 1e-6, "validated with the re-estimated statistics");
        Assert.AreNotEqual(plain.History.Single().ValidationLoss, recalibrated.History.Single().ValidationLoss);
    }

    [TestMethod]
    public void SameSeedSameModel()
    {
        using var a = QuantizedLanguageModel.Train(Chars, Train, null, TinyCorpus.Model(QuantizerKind.TernaryWeightNet), TinyCorpus.Training(1));
        using var b = QuantizedLanguageModel.Train(Chars, Train, null, TinyCorpus.Model(QuantizerKind.TernaryWeightNet), TinyCorpus.Training(1));
        Assert.AreEqual(a.Evaluate(Valid).CrossEntropy, b.Evaluate(Valid).CrossEntropy, 0.0);
        Assert.AreEqual(a.Generate("the ", 30, 1.0, seed: 5), b.Generate("the ", 30, 1.0, seed: 5));
    }

    [TestMethod]
    public void SaveAndLoadGiveIdenticalEvaluationAndGeneration()
    {
        using var model = QuantizedLanguageModel.Train(Chars, Train, null, TinyCorpus.Model(QuantizerKind.TernaryWeightNet, RecurrentNormalization.Layer), TinyCorpus.Training(1));
        using var stream = new MemoryStream();
        model.Save(stream);
        stream.Position = 0;
        using var loaded = QuantizedLanguageModel.Load(stream);
        Assert.AreEqual(model.Evaluate(Valid).CrossEntropy, loaded.Evaluate(Valid).CrossEntropy, 0.0);
        Assert.AreEqual(model.Generate("the ", 40, 0.8, seed: 2), loaded.Generate("the ", 40, 0.8, seed: 2));
        Assert.AreEqual(model.Options.Recurrent.WeightQuantizer.Kind, loaded.Options.Recurrent.WeightQuantizer.Kind);
        Assert.AreEqual(model.History.Count, loaded.History.Count);
        CollectionAssert.AreEqual(model.Vocabulary.Tokens.ToArray(), loaded.Vocabulary.Tokens.ToArray());
    }

    [TestMethod]
    public void DamagedOrForeignModelFilesGetClearErrors()
    {
        using var model = QuantizedLanguageModel.Train(Chars, Train, null, TinyCorpus.Model(), WithSteps(TinyCorpus.Training(1), 2));
        using var stream = new MemoryStream();
        model.Save(stream);
        var bytes = stream.ToArray();
        bytes[bytes.Length / 2] ^= 0xFF;
        var damaged = Assert.ThrowsExactly<ModelFormatException>(() => QuantizedLanguageModel.Load(new MemoryStream(bytes)));
        StringAssert.Contains(damaged.Message, "checksum");
        var foreign = Assert.ThrowsExactly<ModelFormatException>(() => QuantizedLanguageModel.Load(new MemoryStream("not a model at all, just text"u8.ToArray())));
        StringAssert.Contains(foreign.Message, "not a Microsoft.ML.Quantized model");
        var truncated = Assert.ThrowsExactly<ModelFormatException>(() => QuantizedLanguageModel.Load(new MemoryStream(stream.ToArray()[..40])));
        Assert.IsNotNull(truncated.Message);
    }

    [TestMethod]
    public void GenerationIsDeterministicForASeedAndUsesTheVocabulary()
    {
        using var model = QuantizedLanguageModel.Train(Chars, Train, null, TinyCorpus.Model(), TinyCorpus.Training(2));
        var text = model.Generate("the ", 50, 0.5, seed: 9);
        Assert.AreEqual(50, text.Length);
        Assert.AreEqual(text, model.Generate("the ", 50, 0.5, seed: 9));
        Assert.IsTrue(text.All(c => Chars.Tokens.Contains(c.ToString())));
        var greedy = model.Generate("the ", 20, temperature: 0);
        Assert.AreEqual(greedy, model.Generate("the ", 20, temperature: 0, seed: 123), "temperature 0 is greedy, independent of the seed");
    }

    [TestMethod]
    public void SizeReportCountsPackedTernaryWeights()
    {
        using var model = QuantizedLanguageModel.Train(Chars, Train, null, TinyCorpus.Model(QuantizerKind.TernaryWeightNet), WithSteps(TinyCorpus.Training(1), 1));
        var size = model.SizeReport();
        long lstm = 4 * 32 * 16 + 4 * 32 * 32; // W_ih + W_hh
        Assert.AreEqual(lstm, size.QuantizedParameterCount);
        // Stored as trits, five per byte, rows padded to whole bytes (16 columns: 4 bytes, 32: 7), plus one float scale per matrix.
        Assert.AreEqual(8.0 * (4 * 32 * 4 + 4 + 4 * 32 * 7 + 4) / lstm, size.BitsPerQuantizedWeight, 1e-12);
        Assert.IsTrue(size.PackedBytes < size.Float32Bytes);
        Assert.AreEqual(4L * size.ParameterCount, size.Float32Bytes);
    }

    [TestMethod]
    public void QuantizingEmbeddingAndDecoderShrinksThePackedModel()
    {
        var options = TinyCorpus.Model(QuantizerKind.TernaryWeightNet);
        using var inner = QuantizedLanguageModel.Train(Chars, Train, null, options, WithSteps(TinyCorpus.Training(1), 1));
        options.QuantizeEmbeddingAndDecoder = true;
        using var all = QuantizedLanguageModel.Train(Chars, Train, null, options, WithSteps(TinyCorpus.Training(1), 1));
        long outer = Chars.Count * 16L + Chars.Count * 32L; // embedding + decoder weights
        Assert.AreEqual(inner.SizeReport().QuantizedParameterCount + outer, all.SizeReport().QuantizedParameterCount);
        Assert.IsTrue(all.SizeReport().PackedBytes < inner.SizeReport().PackedBytes);
        Assert.AreEqual(inner.SizeReport().ParameterCount, all.SizeReport().ParameterCount);
    }

    internal static TrainingOptions WithSteps(TrainingOptions options, int steps)
    {
        options.MaxStepsPerEpoch = steps;
        return options;
    }
}
