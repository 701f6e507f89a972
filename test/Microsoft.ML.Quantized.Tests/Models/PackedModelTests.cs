namespace Microsoft.ML.Quantized.Tests;

/// <summary>
/// The deployable packed models of the core API: what <c>Pack()</c> gives scores as the libtorch model does, saves
/// without the float training weights and loads back with identical outputs.
/// </summary>
[TestClass]
public sealed class PackedModelTests
{
    private static readonly string Train = TinyCorpus.Text(160);
    private static readonly string Valid = TinyCorpus.Text(30, seed: 11);
    private static readonly Vocabulary Chars = Vocabulary.FromCharacters(Train + Valid);
    private static readonly (int[][] Sequences, int[] Labels) TokenTrain = SequenceClassifierTestData.ContainsToken(200, seed: 1);
    private static readonly (int[][] Sequences, int[] Labels) TokenTest = SequenceClassifierTestData.ContainsToken(100, seed: 2);
    private static readonly (float[][] Sequences, int[] Labels) FrameTrain = SequenceClassifierTestData.SignOfSum(200, seed: 3);
    private static readonly (float[][] Sequences, int[] Labels) FrameTest = SequenceClassifierTestData.SignOfSum(100, seed: 4);

    [TestMethod]
    [DataRow(QuantizerKind.TernaryWeightNet, RecurrentNormalization.Layer, RecurrentCellKind.Lstm)]
    [DataRow(QuantizerKind.BinaryWeightNet, RecurrentNormalization.Weight, RecurrentCellKind.Gru)]
    [DataRow(QuantizerKind.None, RecurrentNormalization.None, RecurrentCellKind.Lstm)]
    public void A_packed_language_model_evaluates_and_generates_as_the_libtorch_model(QuantizerKind kind, RecurrentNormalization normalization, RecurrentCellKind cell)
    {
        using var model = QuantizedLanguageModel.Train(Chars, Train, null, TinyCorpus.Model(kind, normalization, cell), TinyCorpus.Training(2));
        var packed = model.Pack();
        var expected = model.Evaluate(Valid);
        var actual = packed.Evaluate(Valid);
        Assert.AreEqual(expected.TokenCount, actual.TokenCount);
        Assert.AreEqual(expected.CrossEntropy, actual.CrossEntropy, 1e-4 * expected.CrossEntropy, "4 significant digits");
        Assert.AreEqual(model.Generate("the ", 40, temperature: 0), packed.Generate("the ", 40, temperature: 0), "greedy decoding takes the same tokens");
        Assert.AreEqual(model.SizeReport().PackedBytes, packed.SizeReport().PackedBytes);
        Assert.AreEqual(model.Vocabulary.Tokens.Count, packed.Vocabulary.Tokens.Count);
        Assert.AreEqual(model.History.Count, packed.History.Count);
    }

    [TestMethod]
    public void Per_step_batch_norm_keeps_statistics_only_for_the_steps_training_saw()
    {
        // A language model trains on 20-token sequences: 20 sets, not the default 100, every one of them updated.
        var options = TinyCorpus.Model(QuantizerKind.TernaryWeightNet, RecurrentNormalization.BatchPerStep);
        using var perStep = QuantizedLanguageModel.Train(Chars, Train, null, options, TinyCorpus.Training(1));
        using var shared = QuantizedLanguageModel.Train(Chars, Train, null, TinyCorpus.Model(QuantizerKind.TernaryWeightNet, RecurrentNormalization.BatchShared), TinyCorpus.Training(1));
        Assert.AreEqual(100, options.Recurrent.MaxNormalizedSteps, "the caller's options are not changed");
        Assert.AreEqual(20, perStep.Options.Recurrent.MaxNormalizedSteps);
        foreach (var norm in new[] { perStep.Network.Recurrent.Layers[0].InputBatchNorm!, perStep.Network.Recurrent.Layers[0].HiddenBatchNorm! })
        {
            CollectionAssert.AreEqual(new long[] { 20, 4 * 32 }, norm.RunningMean.shape);
            for (int t = 0; t < 20; t++)
                Assert.IsTrue(norm.RunningVar[t].sub(1).abs().max().item<float>() > 0, $"set {t} was updated");
        }
        // Beside the shared model's one set: 19 more sets of 4 x 32 means and variances, for W_x x and W_h h, float32.
        Assert.AreEqual(19L * 4 * 32 * 2 * 2 * 4, perStep.SizeReport().PackedBytes - shared.SizeReport().PackedBytes);
        using var saved = new MemoryStream();
        perStep.Save(saved);
        saved.Position = 0;
        using var loaded = QuantizedLanguageModel.Load(saved);
        Assert.AreEqual(20, loaded.Options.Recurrent.MaxNormalizedSteps);
        Assert.AreEqual(perStep.Evaluate(Valid).CrossEntropy, loaded.Evaluate(Valid).CrossEntropy, 0.0);

        // A classifier trains on 3 to 6 frames: 6 sets; a longer sequence scores with the last one. Layer norm keeps the option.
        using var classifier = QuantizedSequenceClassifier.Train(FrameTrain.Sequences, FrameTrain.Labels,
            options: SequenceClassifierTestData.Model(QuantizerKind.TernaryWeightNet, RecurrentNormalization.BatchPerStep), training: TinyCorpus.Training(1));
        Assert.AreEqual(6, FrameTrain.Sequences.Max(s => s.Length / 2));
        Assert.AreEqual(6, classifier.Options.Recurrent.MaxNormalizedSteps);
        Assert.AreEqual(2, classifier.Predict(new float[20]).Probabilities.Length);
        using var layerNorm = QuantizedSequenceClassifier.Train(FrameTrain.Sequences, FrameTrain.Labels,
            options: SequenceClassifierTestData.Model(QuantizerKind.TernaryWeightNet, RecurrentNormalization.Layer), training: TinyCorpus.Training(1));
        Assert.AreEqual(100, layerNorm.Options.Recurrent.MaxNormalizedSteps);
    }

    [TestMethod]
    public void A_packed_language_model_file_holds_no_float_weights_and_loads_back_identically()
    {
        using var model = QuantizedLanguageModel.Train(Chars, Train, null, TinyCorpus.Model(QuantizerKind.TernaryWeightNet, RecurrentNormalization.BatchPerStep), TinyCorpus.Training(1));
        var packed = model.Pack();
        using var packedFile = new MemoryStream();
        packed.Save(packedFile);
        using var trainingFile = new MemoryStream();
        model.Save(trainingFile);
        // The float file holds 4 bytes per parameter; the packed one the packed bytes, a header and the vocabulary.
        Assert.IsTrue(trainingFile.Length >= model.SizeReport().Float32Bytes, $"training file {trainingFile.Length} B");
        Assert.IsTrue(packedFile.Length < model.SizeReport().PackedBytes + 8_192, $"packed file {packedFile.Length} B vs {model.SizeReport().PackedBytes} B packed");
        packedFile.Position = 0;
        var loaded = PackedLanguageModel.Load(packedFile);
        Assert.AreEqual(packed.Evaluate(Valid).CrossEntropy, loaded.Evaluate(Valid).CrossEntropy, 0.0);
        Assert.AreEqual(packed.Generate("a ", 30, 0.8, seed: 3), loaded.Generate("a ", 30, 0.8, seed: 3));
        Assert.AreEqual(RecurrentNormalization.BatchPerStep, loaded.Options.Recurrent.Normalization);
        // Each file is refused by the other kind's loader, naming what it is.
        packedFile.Position = 0;
        Assert.ThrowsExactly<ModelFormatException>(() => QuantizedLanguageModel.Load(packedFile));
        trainingFile.Position = 0;
        Assert.ThrowsExactly<ModelFormatException>(() => PackedLanguageModel.Load(trainingFile));
    }

    [TestMethod]
    public void A_damaged_packed_file_is_refused()
    {
        using var model = QuantizedLanguageModel.Train(Chars, Train, null, TinyCorpus.Model(QuantizerKind.TernaryWeightNet), WithSteps(TinyCorpus.Training(1), 1));
        using var file = new MemoryStream();
        model.Pack().Save(file);
        var bytes = file.ToArray();
        bytes[bytes.Length / 2] ^= 0x20;
        Assert.ThrowsExactly<ModelFormatException>(() => PackedLanguageModel.Load(new MemoryStream(bytes)));
    }

    [TestMethod]
    [DataRow(QuantizerKind.TernaryWeightNet, RecurrentNormalization.Weight, RecurrentCellKind.Lstm)]
    [DataRow(QuantizerKind.AlternatingMultiBit, RecurrentNormalization.BatchShared, RecurrentCellKind.Gru)]
    public void A_packed_token_classifier_predicts_and_evaluates_as_the_libtorch_classifier(QuantizerKind kind, RecurrentNormalization normalization, RecurrentCellKind cell)
    {
        var options = SequenceClassifierTestData.Model(kind, normalization, cell);
        options.QuantizeEmbeddingAndHead = kind != QuantizerKind.None;
        using var model = QuantizedSequenceClassifier.Train(TokenTrain.Sequences, TokenTrain.Labels, null, null, options, SequenceClassifierTestData.Training(2));
        var packed = model.Pack();
        foreach (var sequence in TokenTest.Sequences.Take(20))
        {
            var expected = model.Predict(sequence);
            var actual = packed.Predict(sequence);
            Assert.AreEqual(expected.PredictedClass, actual.PredictedClass);
            for (int c = 0; c < expected.Probabilities.Length; c++)
                Assert.AreEqual(expected.Probabilities[c], actual.Probabilities[c], 1e-4 * Math.Max(expected.Probabilities[c], 1e-3));
        }
        var e = model.Evaluate(TokenTest.Sequences, TokenTest.Labels);
        var a = packed.Evaluate(TokenTest.Sequences, TokenTest.Labels);
        Assert.AreEqual(e.Accuracy, a.Accuracy, 0.0);
        Assert.AreEqual(e.AreaUnderRocCurve, a.AreaUnderRocCurve, 1e-4);
        Assert.AreEqual(e.LogLoss, a.LogLoss, 1e-4 * e.LogLoss);
        using var file = new MemoryStream();
        packed.Save(file);
        file.Position = 0;
        var loaded = PackedSequenceClassifier.Load(file);
        CollectionAssert.AreEqual(packed.Predict(TokenTest.Sequences[0]).Probabilities, loaded.Predict(TokenTest.Sequences[0]).Probabilities);
        Assert.AreEqual(2, loaded.ClassCount);
        Assert.AreEqual(SequenceClassifierInputKind.Tokens, loaded.InputKind);
    }

    [TestMethod]
    public void A_packed_frame_classifier_predicts_as_the_libtorch_classifier_and_rejects_bad_input()
    {
        using var model = QuantizedSequenceClassifier.Train(FrameTrain.Sequences, FrameTrain.Labels, null, null,
            SequenceClassifierTestData.Model(QuantizerKind.TernaryWeightNet, RecurrentNormalization.Layer, RecurrentCellKind.Gru), SequenceClassifierTestData.Training(2));
        var packed = model.Pack();
        var e = model.Evaluate(FrameTest.Sequences, FrameTest.Labels);
        var a = packed.Evaluate(FrameTest.Sequences, FrameTest.Labels);
        Assert.AreEqual(e.Accuracy, a.Accuracy, 0.0);
        Assert.AreEqual(e.LogLoss, a.LogLoss, 1e-4 * e.LogLoss);
        Assert.ThrowsExactly<InvalidOperationException>(() => packed.Predict(new[] { 1, 2 }));
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => packed.Predict(new float[] { 1f, 2f, 3f })).Message, "whole frames");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => packed.Evaluate(FrameTest.Sequences[..2], [0, 5])).Message, "labels[1] = 5");
    }

    private static TrainingOptions WithSteps(TrainingOptions training, int steps) => QuantizedLanguageModelTests.WithSteps(training, steps);
}
