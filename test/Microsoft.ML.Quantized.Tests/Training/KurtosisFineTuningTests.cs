namespace Microsoft.ML.Quantized.Tests;

[TestClass]
public sealed class KurtosisFineTuningTests
{
    private static readonly string Train = TinyCorpus.Text(120);
    private static readonly string Valid = TinyCorpus.Text(20, seed: 17);
    private static readonly Vocabulary Chars = Vocabulary.FromCharacters(Train + Valid);

    [TestMethod]
    public void FineTunedModelMovesKurtosisSavesLoadsAndEvaluatesIdentically()
    {
        using var model = QuantizedLanguageModel.Train(Chars, Train, null, TinyCorpus.Model(), QuantizedLanguageModelTests.WithSteps(TinyCorpus.Training(2), 3));
        var training = QuantizedLanguageModelTests.WithSteps(TinyCorpus.Training(1), 10);
        training.Optimizer = OptimizerKind.Adam;
        training.LearningRate = 1e-2;
        var kure = new KureOptions { Lambda = 1, Target = 3.0 };
        using var tuned = model.FineTuneWithKure(Chars.Encode(Train), Chars.Encode(Valid), kure, training);

        double Distance(QuantizedLanguageModel m) => m.Network.Recurrent.QuantizedWeights().Average(w => Math.Abs(Kurtosis.Value(w.Weight) - kure.Target));
        Assert.IsTrue(Distance(tuned) < Distance(model) - 0.2, $"|Kurt - 3|: before {Distance(model):F3}, after {Distance(tuned):F3}");
        Assert.AreEqual(3, tuned.History.Count, "2 epochs of training + 1 of fine-tuning");
        Assert.AreEqual(3, tuned.History[^1].Epoch);
        Assert.IsTrue(double.IsFinite(tuned.History[^1].ValidationLoss));
        Assert.AreEqual(model.Options.Recurrent.WeightQuantizer.ToString(), tuned.Options.Recurrent.WeightQuantizer.ToString());
        Assert.AreEqual(2, model.History.Count, "the source model is left as it is");

        using var stream = new MemoryStream();
        tuned.Save(stream);
        stream.Position = 0;
        using var loaded = QuantizedLanguageModel.Load(stream);
        Assert.AreEqual(tuned.Evaluate(Valid).CrossEntropy, loaded.Evaluate(Valid).CrossEntropy, 0.0);
        Assert.AreEqual(tuned.History.Count, loaded.History.Count);
    }

    [TestMethod]
    public void ShortOverloadFineTunesAQuantizedModelWithAdamAtThePapersRate()
    {
        var options = TinyCorpus.Model(QuantizerKind.Uniform);
        using var model = QuantizedLanguageModel.Train(Chars, Train, null, options, QuantizedLanguageModelTests.WithSteps(TinyCorpus.Training(1), 5));
        var reports = new List<TrainingProgress>();
        using var tuned = model.FineTuneWithKure(Train, progress: new SynchronousProgress<TrainingProgress>(reports.Add));
        Assert.AreEqual(2, tuned.History.Count);
        Assert.AreEqual(1e-3, tuned.History[^1].LearningRate, 0.0);
        Assert.AreEqual(model.SequenceLength, tuned.SequenceLength);
        Assert.IsTrue(reports.Count > 0);
        Assert.IsTrue(double.IsFinite(tuned.Evaluate(Valid).Perplexity));
        Assert.AreEqual("uniform4", tuned.Options.Recurrent.WeightQuantizer.ToString());
    }

    [TestMethod]
    public void BadFineTuningArgumentsAreRejected()
    {
        using var model = QuantizedLanguageModel.Train(Chars, Train, null, TinyCorpus.Model(), QuantizedLanguageModelTests.WithSteps(TinyCorpus.Training(1), 1));
        var lambda = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => model.FineTuneWithKure(Train, new KureOptions { Lambda = -1 }));
        Assert.AreEqual("KureOptions.Lambda", lambda.ParamName);
        var epochs = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => model.FineTuneWithKure(Train, epochs: 0));
        StringAssert.Contains(epochs.Message, "Epochs");
        var rate = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => model.FineTuneWithKure(Train, learningRate: double.NaN));
        StringAssert.Contains(rate.Message, "LearningRate");
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => model.FineTuneWithKure(new[] { 0, 1, Chars.Count }));
    }
}
