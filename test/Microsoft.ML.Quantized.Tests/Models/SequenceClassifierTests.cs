using TorchSharp;

namespace Microsoft.ML.Quantized.Tests;

[TestClass]
public sealed class SequenceClassifierTests
{
    private static readonly (int[][] Sequences, int[] Labels) TokenTrain = SequenceClassifierTestData.ContainsToken(400, seed: 1);
    private static readonly (int[][] Sequences, int[] Labels) TokenTest = SequenceClassifierTestData.ContainsToken(200, seed: 2);
    private static readonly (float[][] Sequences, int[] Labels) FrameTrain = SequenceClassifierTestData.SignOfSum(400, seed: 3);
    private static readonly (float[][] Sequences, int[] Labels) FrameTest = SequenceClassifierTestData.SignOfSum(200, seed: 4);

    [TestMethod]
    [DataRow(QuantizerKind.None, RecurrentNormalization.None, RecurrentCellKind.Lstm)]
    [DataRow(QuantizerKind.TernaryWeightNet, RecurrentNormalization.Weight, RecurrentCellKind.Lstm)]
    [DataRow(QuantizerKind.None, RecurrentNormalization.None, RecurrentCellKind.Gru)]
    public void TokenClassifierLearnsWhetherAMarkerTokenAppears(QuantizerKind kind, RecurrentNormalization normalization, RecurrentCellKind cell)
    {
        using var model = QuantizedSequenceClassifier.Train(TokenTrain.Sequences, TokenTrain.Labels, TokenTest.Sequences, TokenTest.Labels,
            SequenceClassifierTestData.Model(kind, normalization, cell), SequenceClassifierTestData.Training(4));
        var evaluation = model.Evaluate(TokenTest.Sequences, TokenTest.Labels);
        Assert.IsTrue(evaluation.Accuracy > 0.9, $"{kind}/{normalization}/{cell}: held-out accuracy {evaluation.Accuracy:F3} should clearly beat chance (~0.5)");
        Assert.IsTrue(evaluation.AreaUnderRocCurve > 0.95, $"AUC {evaluation.AreaUnderRocCurve:F3}");
        Assert.IsTrue(evaluation.LogLoss < 0.4, $"log-loss {evaluation.LogLoss:F3} should be well below ln 2");
        Assert.AreEqual(200, evaluation.Count);
        Assert.AreEqual(4, model.History.Count);
        Assert.IsTrue(model.History[^1].TrainingLoss < model.History[0].TrainingLoss);
        Assert.IsTrue(double.IsFinite(model.History[^1].ValidationLoss));
        Assert.AreEqual(SequenceClassifierInputKind.Tokens, model.InputKind);
    }

    [TestMethod]
    public void FrameClassifierLearnsTheSignOfTheSum()
    {
        using var model = QuantizedSequenceClassifier.Train(FrameTrain.Sequences, FrameTrain.Labels, null, null,
            SequenceClassifierTestData.Model(cell: RecurrentCellKind.Gru), SequenceClassifierTestData.Training(4));
        var evaluation = model.Evaluate(FrameTest.Sequences, FrameTest.Labels);
        Assert.IsTrue(evaluation.Accuracy > 0.9, $"held-out accuracy {evaluation.Accuracy:F3} should clearly beat chance (~0.5)");
        Assert.AreEqual(SequenceClassifierInputKind.Frames, model.InputKind);
        Assert.IsTrue(double.IsNaN(model.History[0].ValidationLoss), "no validation set, no validation loss");
    }

    /// <summary>
    /// Sequences that start with 120 zero frames (as MNIST read pixel by pixel starts with its blank rows): from a zero
    /// start every sequence of a batch has the same hidden state for 120 steps, per-step batch norm's batch variance is 0
    /// there, and the gradient overflows on the first step. Cooijmans et al.'s noisy initial state keeps the sequences
    /// apart: the same model trains, and scoring, which starts from zeros, is deterministic.
    /// </summary>
    [TestMethod]
    public void BatchNormRecalibrationBeforeValidationKeepsTheWeightsAndValidatesWithTheStatisticsItSaves()
    {
        var options = SequenceClassifierTestData.Model(normalization: RecurrentNormalization.BatchPerStep);
        var training = SequenceClassifierTestData.Training(1);
        var (train, labels, valid, validLabels) = (FrameTrain.Sequences[..200], FrameTrain.Labels[..200], FrameTest.Sequences[..100], FrameTest.Labels[..100]);
        using var plain = QuantizedSequenceClassifier.Train(train, labels, valid, validLabels, options, training);
        var recalibrating = training.Clone();
        recalibrating.BatchNormRecalibrationSteps = 3;
        using var recalibrated = QuantizedSequenceClassifier.Train(train, labels, valid, validLabels, options, recalibrating);

        foreach (var ((name, value), (_, other)) in plain.Network.named_parameters().Zip(recalibrated.Network.named_parameters()))
            Assert.AreEqual(0f, (value - other).abs().max().item<float>(), $"{name}: the weights train the same");
        var moved = plain.Network.named_buffers().Zip(recalibrated.Network.named_buffers())
            .Where(p => p.First.name.Contains("running", StringComparison.Ordinal))
            .Max(p => (p.First.buffer - p.Second.buffer).abs().max().item<float>());
        Assert.IsGreaterThan(1e-4f, moved, "the running statistics were re-estimated");
        // The validation loss is the mean cross entropy of the validation examples: the kept model, scored again, gives it.
        Assert.AreEqual(recalibrated.Evaluate(valid, validLabels).LogLoss, recalibrated.History.Single().ValidationLoss, 1e-5);
        Assert.AreEqual(plain.Evaluate(valid, validLabels).LogLoss, plain.History.Single().ValidationLoss, 1e-5);
        Assert.AreNotEqual(plain.History.Single().ValidationLoss, recalibrated.History.Single().ValidationLoss);
    }

    [TestMethod]
    public void NoisyInitialStateLetsBatchNormTrainOnAConstantLeadIn()
    {
        float[][] LeadIn(float[][] sequences) => sequences.Select(s => new float[2 * 120].Concat(s).ToArray()).ToArray();
        var train = LeadIn(FrameTrain.Sequences[..96]);
        var test = LeadIn(FrameTest.Sequences[..20]);
        SequenceClassifierOptions Model(double noise)
        {
            var options = SequenceClassifierTestData.Model(normalization: RecurrentNormalization.BatchPerStep);
            options.Recurrent.HiddenSize = 16;
            options.InitialStateNoise = noise;
            return options;
        }

        var diverged = Assert.Throws<TrainingDivergedException>(() =>
            QuantizedSequenceClassifier.Train(train, FrameTrain.Labels[..96], null, null, Model(0), SequenceClassifierTestData.Training(1)));
        StringAssert.Contains(diverged.Message, "the gradient norm is NaN");
        StringAssert.Contains(diverged.Message, "start each sequence from a noisy state (SequenceClassifierOptions.InitialStateNoise, e.g. 0.1)");

        using var model = QuantizedSequenceClassifier.Train(train, FrameTrain.Labels[..96], null, null, Model(0.1), SequenceClassifierTestData.Training(2));
        Assert.IsTrue(model.History.All(h => double.IsFinite(h.TrainingLoss)), string.Join(", ", model.History.Select(h => h.TrainingLoss)));
        var first = model.PredictBatch(test);
        var second = model.PredictBatch(test);
        for (int i = 0; i < test.Length; i++)
            Assert.AreEqual(first[i].Probabilities[1], second[i].Probabilities[1], $"sequence {i}: scoring draws no noise");
        // Saved with the model (a KURE fine-tune of the loaded model draws it too); left out of the header while 0, so
        // models trained without it read with library versions from before it.
        using (var loaded = SequenceClassifierTestData.SavedAndLoaded(model)) Assert.AreEqual(0.1, loaded.Options.InitialStateNoise);
        StringAssert.Contains(System.Text.Json.JsonSerializer.Serialize(Model(0.1), ModelFile.HeaderJson), "\"InitialStateNoise\":0.1");
        Assert.DoesNotContain("InitialStateNoise", System.Text.Json.JsonSerializer.Serialize(Model(0), ModelFile.HeaderJson));
        Assert.Throws<ArgumentOutOfRangeException>(() =>
            QuantizedSequenceClassifier.Train(train, FrameTrain.Labels[..96], null, null, Model(-0.1), SequenceClassifierTestData.Training(1)));
    }

    [TestMethod]
    [DataRow(RecurrentNormalization.None)]
    [DataRow(RecurrentNormalization.Layer)]
    public void PaddedBatchesPredictLikeSequencesAlone(RecurrentNormalization normalization)
    {
        using var tokens = QuantizedSequenceClassifier.Train(TokenTrain.Sequences[..64], TokenTrain.Labels[..64], null, null,
            SequenceClassifierTestData.Model(normalization: normalization), SequenceClassifierTestData.Training(1));
        var sequences = TokenTest.Sequences[..40];
        Assert.IsTrue(sequences.Select(s => s.Length).Distinct().Count() > 3, "the batch must mix lengths");
        var batch = tokens.PredictBatch(sequences);
        for (int i = 0; i < sequences.Length; i++)
        {
            var alone = tokens.Predict(sequences[i]);
            Assert.AreEqual(alone.PredictedClass, batch[i].PredictedClass, $"sequence {i}");
            for (int c = 0; c < 2; c++) Assert.AreEqual(alone.Probabilities[c], batch[i].Probabilities[c], 1e-5, $"sequence {i} class {c}");
        }
        // The padded answer must differ from reading the padding: the last step matters.
        var padded = tokens.Predict(sequences[0].Concat(new int[8]).ToArray());
        Assert.AreNotEqual(batch[0].Probabilities[1], padded.Probabilities[1], "a sequence with extra tokens is a different input");

        using var frames = QuantizedSequenceClassifier.Train(FrameTrain.Sequences[..64], FrameTrain.Labels[..64], null, null,
            SequenceClassifierTestData.Model(normalization: normalization), SequenceClassifierTestData.Training(1));
        var frameSequences = FrameTest.Sequences[..40];
        var frameBatch = frames.PredictBatch(frameSequences);
        for (int i = 0; i < frameSequences.Length; i++)
            Assert.AreEqual(frames.Predict(frameSequences[i]).Probabilities[1], frameBatch[i].Probabilities[1], 1e-5, $"frame sequence {i}");
    }

    [TestMethod]
    public void ProbabilitiesAreADistributionAndThePredictionIsTheLikeliestClass()
    {
        var options = SequenceClassifierTestData.Model();
        options.ClassCount = 3;
        var labels = TokenTrain.Labels[..64].Select((l, i) => i % 3 == 0 ? 2 : l).ToArray();
        using var model = QuantizedSequenceClassifier.Train(TokenTrain.Sequences[..64], labels, null, null, options, SequenceClassifierTestData.Training(1));
        foreach (var p in model.PredictBatch(TokenTest.Sequences[..20]))
        {
            Assert.AreEqual(3, p.Probabilities.Length);
            Assert.AreEqual(1.0, p.Probabilities.Sum(), 1e-5);
            Assert.AreEqual(Array.IndexOf(p.Probabilities, p.Probabilities.Max()), p.PredictedClass);
        }
        Assert.IsTrue(double.IsNaN(model.Evaluate(TokenTest.Sequences[..20], TokenTest.Labels[..20]).AreaUnderRocCurve), "AUC is for binary models");
    }

    [TestMethod]
    public void KureDuringTrainingPullsRecurrentKurtosisTowardTheTarget()
    {
        double MeanDistance(TrainingOptions training)
        {
            using var model = QuantizedSequenceClassifier.Train(TokenTrain.Sequences[..128], TokenTrain.Labels[..128], null, null,
                SequenceClassifierTestData.Model(), training);
            return model.Network.Recurrent.QuantizedWeights().Average(w => Math.Abs(Kurtosis.Value(w.Weight) - 1.8));
        }
        var plain = SequenceClassifierTestData.Training(3);
        var kure = SequenceClassifierTestData.Training(3);
        kure.Kure = new KureOptions { Lambda = 1.0 };
        double without = MeanDistance(plain), with = MeanDistance(kure);
        Assert.IsTrue(with < 0.5 * without, $"KURE should pull kurtosis toward 1.8: mean |kurt - 1.8| {without:F3} without, {with:F3} with");
    }

    [TestMethod]
    public void SaveAndLoadGiveIdenticalPredictions()
    {
        using var model = QuantizedSequenceClassifier.Train(TokenTrain.Sequences[..96], TokenTrain.Labels[..96], null, null,
            SequenceClassifierTestData.Model(QuantizerKind.TernaryWeightNet, RecurrentNormalization.Layer), SequenceClassifierTestData.Training(1));
        using var loaded = SequenceClassifierTestData.SavedAndLoaded(model);
        var before = model.PredictBatch(TokenTest.Sequences);
        var after = loaded.PredictBatch(TokenTest.Sequences);
        for (int i = 0; i < before.Length; i++)
        {
            Assert.AreEqual(before[i].PredictedClass, after[i].PredictedClass);
            CollectionAssert.AreEqual(before[i].Probabilities, after[i].Probabilities, $"sequence {i}");
        }
        Assert.AreEqual(SequenceClassifierInputKind.Tokens, loaded.InputKind);
        Assert.AreEqual(model.Options.VocabularySize, loaded.Options.VocabularySize);
        Assert.AreEqual(QuantizerKind.TernaryWeightNet, loaded.Options.Recurrent.WeightQuantizer.Kind);
        Assert.AreEqual(model.History.Count, loaded.History.Count);
        Assert.AreEqual(model.SizeReport(), loaded.SizeReport());

        using var frames = QuantizedSequenceClassifier.Train(FrameTrain.Sequences[..64], FrameTrain.Labels[..64], null, null,
            SequenceClassifierTestData.Model(cell: RecurrentCellKind.Gru), SequenceClassifierTestData.Training(1));
        var path = Path.Combine(Path.GetTempPath(), "mlqz-classifier-" + Guid.NewGuid().ToString("N") + ".model");
        try
        {
            frames.Save(path);
            using var reloaded = QuantizedSequenceClassifier.Load(path);
            Assert.AreEqual(SequenceClassifierInputKind.Frames, reloaded.InputKind);
            Assert.AreEqual(frames.Predict(FrameTest.Sequences[0]).Probabilities[1], reloaded.Predict(FrameTest.Sequences[0]).Probabilities[1], 0.0);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [TestMethod]
    public void ForeignOrDamagedFilesGetClearErrors()
    {
        using var other = new MemoryStream();
        ModelFile.Write(other, "language-model", "{}", Array.Empty<byte>());
        var foreign = Assert.ThrowsExactly<ModelFormatException>(() => QuantizedSequenceClassifier.Load(new MemoryStream(other.ToArray())));
        StringAssert.Contains(foreign.Message, "'language-model' model, not a 'sequence-classifier'");

        using var model = QuantizedSequenceClassifier.Train(TokenTrain.Sequences[..32], TokenTrain.Labels[..32], null, null,
            SequenceClassifierTestData.Model(), SequenceClassifierTestData.Training(1));
        using var stream = new MemoryStream();
        model.Save(stream);
        var bytes = stream.ToArray();
        bytes[bytes.Length / 2] ^= 0x55;
        var damaged = Assert.ThrowsExactly<ModelFormatException>(() => QuantizedSequenceClassifier.Load(new MemoryStream(bytes)));
        StringAssert.Contains(damaged.Message, "checksum");
    }

    [TestMethod]
    public void SameSeedSameModelAndAnotherSeedAnother()
    {
        QuantizedSequenceClassifier Train(int seed) => QuantizedSequenceClassifier.Train(TokenTrain.Sequences[..96], TokenTrain.Labels[..96], null, null,
            SequenceClassifierTestData.Model(QuantizerKind.TernaryWeightNet), SequenceClassifierTestData.Training(2, seed));
        using var a = Train(5);
        using var b = Train(5);
        using var c = Train(6);
        var pa = a.PredictBatch(TokenTest.Sequences);
        var pb = b.PredictBatch(TokenTest.Sequences);
        var pc = c.PredictBatch(TokenTest.Sequences);
        for (int i = 0; i < pa.Length; i++) CollectionAssert.AreEqual(pa[i].Probabilities, pb[i].Probabilities, $"sequence {i}");
        Assert.AreEqual(a.History[^1].TrainingLoss, b.History[^1].TrainingLoss, 0.0);
        Assert.IsTrue(pa.Zip(pc).Any(p => p.First.Probabilities[1] != p.Second.Probabilities[1]), "another seed gives another model");
    }

    [TestMethod]
    public void ResumingFromACheckpointEndsLikeAnUninterruptedRun()
    {
        var root = Path.Combine(Path.GetTempPath(), "mlqz-classifier-resume-" + Guid.NewGuid().ToString("N"));
        try
        {
            var options = SequenceClassifierTestData.Model(QuantizerKind.TernaryWeightNet, RecurrentNormalization.Weight);
            options.Dropout = 0.3;
            var sequences = TokenTrain.Sequences[..80];
            var labels = TokenTrain.Labels[..80];
            using var straight = QuantizedSequenceClassifier.Train(sequences, labels, null, null, options, SequenceClassifierTestData.Training(3));
            var first = SequenceClassifierTestData.Training(1);
            first.CheckpointDirectory = root;
            using (QuantizedSequenceClassifier.Train(sequences, labels, null, null, options, first)) { }
            var rest = SequenceClassifierTestData.Training(3);
            rest.CheckpointDirectory = root;
            using var resumed = QuantizedSequenceClassifier.Train(sequences, labels, null, null, options, rest);
            Assert.AreEqual(3, resumed.History.Count);
            Assert.AreEqual(straight.History[^1].TrainingLoss, resumed.History[^1].TrainingLoss, 0.0);
            var a = straight.PredictBatch(TokenTest.Sequences);
            var b = resumed.PredictBatch(TokenTest.Sequences);
            for (int i = 0; i < a.Length; i++) CollectionAssert.AreEqual(a[i].Probabilities, b[i].Probabilities, $"sequence {i}");
            // Dropout is off when predicting: one sequence alone scores as in a batch, to float rounding (a batch sums in another order).
            var alone = straight.Predict(TokenTest.Sequences[0]).Probabilities;
            for (int c = 0; c < alone.Length; c++) Assert.AreEqual(a[0].Probabilities[c], alone[c], 1e-6f, "dropout is off when predicting");
        }
        finally
        {
            if (Directory.Exists(root)) Directory.Delete(root, recursive: true);
        }
    }

    [TestMethod]
    public void EpochOrderIsAShuffleFixedByTheEpochSeed()
    {
        var data = SequenceClassifierData.FromTokens(TokenTrain.Sequences[..50], TokenTrain.Labels[..50], 8, 2, "s");
        using var network = new SequenceClassifierNetwork(SequenceClassifierInputKind.Tokens, 8, SequenceClassifierTestData.Model());
        var task = new SequenceClassifierTask(network, data, null, 16, seed: 7, torch.CPU);
        var again = new SequenceClassifierTask(network, data, null, 16, seed: 7, torch.CPU);
        task.BeginEpoch(1);
        again.BeginEpoch(1);
        var first = task.Order.ToArray();
        CollectionAssert.AreEqual(first, again.Order.ToArray(), "same seed and epoch, same order");
        CollectionAssert.AreEquivalent(Enumerable.Range(0, 50).ToArray(), first, "a permutation of every example");
        CollectionAssert.AreNotEqual(Enumerable.Range(0, 50).ToArray(), first, "shuffled");
        task.BeginEpoch(2);
        CollectionAssert.AreNotEqual(first, task.Order.ToArray(), "each epoch has its own order");
        Assert.AreEqual(4, task.StepsPerEpoch, "50 examples in batches of 16: the last batch is partial");
        var (loss, units) = task.TrainingLoss(3);
        Assert.AreEqual(2L, units);
        loss.Dispose();
    }

    [TestMethod]
    public void BadInputsGetErrorsNamingTheExample()
    {
        var options = SequenceClassifierTestData.Model();
        var training = SequenceClassifierTestData.Training(1);
        int[][] tokens = { new[] { 1, 2 }, new[] { 3 }, new[] { 4, 5, 6 } };

        var label = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => QuantizedSequenceClassifier.Train(tokens, new[] { 0, 1, 2 }, null, null, options, training));
        StringAssert.Contains(label.Message, "trainingLabels[2] = 2 is outside [0, 2)");
        StringAssert.Contains(label.Message, "ClassCount");

        var empty = Assert.ThrowsExactly<ArgumentException>(() => QuantizedSequenceClassifier.Train(new[] { new[] { 1 }, Array.Empty<int>() }, new[] { 0, 1 }, null, null, options, training));
        StringAssert.Contains(empty.Message, "trainingSequences[1] is empty");

        var vocabulary = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => QuantizedSequenceClassifier.Train(new[] { new[] { 1, 9 } }, new[] { 0 }, null, null, options, training));
        StringAssert.Contains(vocabulary.Message, "trainingSequences[0][1] = 9 is outside the vocabulary [0, 8)");

        var count = Assert.ThrowsExactly<ArgumentException>(() => QuantizedSequenceClassifier.Train(tokens, new[] { 0, 1 }, null, null, options, training));
        StringAssert.Contains(count.Message, "3 sequences but trainingLabels has 2 labels");

        var validationLabel = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() =>
            QuantizedSequenceClassifier.Train(tokens, new[] { 0, 1, 0 }, tokens, new[] { 0, -1, 0 }, options, training));
        StringAssert.Contains(validationLabel.Message, "validationLabels[1] = -1");

        var half = Assert.ThrowsExactly<ArgumentException>(() => QuantizedSequenceClassifier.Train(tokens, new[] { 0, 1, 0 }, tokens, null, options, training));
        StringAssert.Contains(half.Message, "validationLabels");

        var nan = Assert.ThrowsExactly<ArgumentException>(() =>
            QuantizedSequenceClassifier.Train(new[] { new float[] { 1, 2 }, new float[] { 0, 1, float.NaN, 2 } }, new[] { 0, 1 }, null, null, options, training));
        StringAssert.Contains(nan.Message, "trainingSequences[1][2] is NaN");
        var infinity = Assert.ThrowsExactly<ArgumentException>(() =>
            QuantizedSequenceClassifier.Train(new[] { new float[] { float.PositiveInfinity, 2 } }, new[] { 0 }, null, null, options, training));
        StringAssert.Contains(infinity.Message, "trainingSequences[0][0] is");

        var frames = Assert.ThrowsExactly<ArgumentException>(() =>
            QuantizedSequenceClassifier.Train(new[] { new float[] { 1, 2 }, new float[] { 1, 2, 3 } }, new[] { 0, 1 }, null, null, options, training));
        StringAssert.Contains(frames.Message, "trainingSequences[1] has 3 values, not a multiple of SequenceClassifierOptions.FrameSize = 2");

        var emptyFrames = Assert.ThrowsExactly<ArgumentException>(() =>
            QuantizedSequenceClassifier.Train(new[] { Array.Empty<float>() }, new[] { 0 }, null, null, options, training));
        StringAssert.Contains(emptyFrames.Message, "trainingSequences[0] is empty");

        options.ClassCount = 1;
        var classes = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => QuantizedSequenceClassifier.Train(tokens, new[] { 0, 0, 0 }, null, null, options, training));
        StringAssert.Contains(classes.Message, "SequenceClassifierOptions.ClassCount must be at least 2");
    }

    [TestMethod]
    public void PredictionChecksItsInputsToo()
    {
        var options = SequenceClassifierTestData.Model();
        options.VocabularySize = 0; // inferred: largest id + 1
        using var model = QuantizedSequenceClassifier.Train(new[] { new[] { 0, 1 }, new[] { 4, 2 } }, new[] { 0, 1 }, null, null, options, SequenceClassifierTestData.Training(1));
        Assert.AreEqual(5, model.Options.VocabularySize);
        var outside = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => model.Predict(new[] { 1, 5 }));
        StringAssert.Contains(outside.Message, "sequences[0][1] = 5 is outside the vocabulary [0, 5)");
        var empty = Assert.ThrowsExactly<ArgumentException>(() => model.PredictBatch(new[] { new[] { 1 }, Array.Empty<int>() }));
        StringAssert.Contains(empty.Message, "sequences[1] is empty");
        var kind = Assert.ThrowsExactly<InvalidOperationException>(() => model.Predict(new float[] { 1, 2 }));
        StringAssert.Contains(kind.Message, "reads token ids");
    }

    [TestMethod]
    public void SizeReportCountsTheQuantizedRecurrentWeights()
    {
        using var model = QuantizedSequenceClassifier.Train(TokenTrain.Sequences[..32], TokenTrain.Labels[..32], null, null,
            SequenceClassifierTestData.Model(QuantizerKind.TernaryWeightNet, RecurrentNormalization.Weight), SequenceClassifierTestData.Training(1));
        var size = model.SizeReport();
        Assert.AreEqual(4L * 24 * 8 + 4L * 24 * 24, size.QuantizedParameterCount, "LSTM W_ih + W_hh; embedding and head stay float");
        // Stored as trits, five per byte, rows padded to whole bytes (8 columns: 2 bytes, 24: 5), plus one float scale per matrix.
        Assert.AreEqual(8.0 * (4 * 24 * 2 + 4 + 4 * 24 * 5 + 4) / (4.0 * 24 * 8 + 4 * 24 * 24), size.BitsPerQuantizedWeight, 1e-12);
        Assert.IsTrue(size.FloatParameterCount >= 8 * 8 + 2 * 24 + 2, "embedding, head weight and bias are float");

        var options = SequenceClassifierTestData.Model(QuantizerKind.TernaryWeightNet);
        options.QuantizeEmbeddingAndHead = true;
        using var all = QuantizedSequenceClassifier.Train(TokenTrain.Sequences[..32], TokenTrain.Labels[..32], null, null, options, SequenceClassifierTestData.Training(1));
        Assert.AreEqual(4L * 24 * 8 + 4L * 24 * 24 + 8 * 8 + 2 * 24, all.SizeReport().QuantizedParameterCount);
    }

    [TestMethod]
    public void EmbeddingQuantizerPacksTheTableWithItsOwnBitsAndSurvivesSaveLoad()
    {
        var options = SequenceClassifierTestData.Model(QuantizerKind.TernaryWeightNet);
        options.QuantizeEmbeddingAndHead = true;
        options.EmbeddingQuantizer = new QuantizerOptions { Kind = QuantizerKind.BinaryWeightNet };
        using var model = QuantizedSequenceClassifier.Train(TokenTrain.Sequences[..32], TokenTrain.Labels[..32], null, null, options, SequenceClassifierTestData.Training(1));
        var quantizers = model.Network.WeightMatrices().ToDictionary(m => m.Name, m => m.Quantizer);
        Assert.AreEqual("bwn", quantizers["embedding"].RegistryName);
        Assert.AreEqual("twn", quantizers["head.weight"].RegistryName, "the head keeps the recurrent weight quantizer");

        using var loaded = SequenceClassifierTestData.SavedAndLoaded(model);
        var expected = model.PredictBatch(TokenTest.Sequences);
        var actual = loaded.PredictBatch(TokenTest.Sequences);
        for (int i = 0; i < expected.Length; i++) CollectionAssert.AreEqual(expected[i].Probabilities, actual[i].Probabilities);

        options.EmbeddingQuantizer = new QuantizerOptions { Kind = QuantizerKind.BernoulliTernary };
        var bad = Assert.ThrowsExactly<ArgumentException>(() => QuantizedSequenceClassifier.Train(TokenTrain.Sequences[..32], TokenTrain.Labels[..32], null, null, options, SequenceClassifierTestData.Training(1)));
        StringAssert.Contains(bad.Message, "SequenceClassifierOptions.EmbeddingQuantizer");
    }

    [TestMethod]
    public void AucCountsTiesAsHalf()
    {
        Assert.AreEqual(1.0, SequenceClassifierEvaluation.Auc(new[] { 0.1f, 0.2f, 0.8f, 0.9f }, new[] { 0, 0, 1, 1 }), 1e-12);
        Assert.AreEqual(0.0, SequenceClassifierEvaluation.Auc(new[] { 0.9f, 0.8f, 0.2f, 0.1f }, new[] { 0, 0, 1, 1 }), 1e-12);
        Assert.AreEqual(0.5, SequenceClassifierEvaluation.Auc(new[] { 0.5f, 0.5f, 0.5f, 0.5f }, new[] { 0, 1, 0, 1 }), 1e-12);
        Assert.AreEqual(0.75, SequenceClassifierEvaluation.Auc(new[] { 0.1f, 0.4f, 0.35f, 0.8f }, new[] { 0, 0, 1, 1 }), 1e-12);
        Assert.IsTrue(double.IsNaN(SequenceClassifierEvaluation.Auc(new[] { 0.1f, 0.4f }, new[] { 1, 1 })));
    }

    [TestMethod]
    public void LiveTensorCountStaysFlatAcrossPredictions()
    {
        using var model = QuantizedSequenceClassifier.Train(TokenTrain.Sequences[..32], TokenTrain.Labels[..32], null, null,
            SequenceClassifierTestData.Model(), SequenceClassifierTestData.Training(1));
        model.PredictBatch(TokenTest.Sequences);
        long before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        for (int i = 0; i < 5; i++) model.PredictBatch(TokenTest.Sequences);
        model.Evaluate(TokenTest.Sequences, TokenTest.Labels);
        Assert.AreEqual(before, DisposeScopeManager.Statistics.ThreadTotalLiveCount, "prediction must not leave tensors alive");
    }
}
