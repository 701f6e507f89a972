using Microsoft.ML.Quantized.Samples.Reproduction;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized.Tests.Samples;

/// <summary>The sign-flip study's recorder (Li et al. 2017, question 3) against hand-worked signs and a direct comparison of weights.</summary>
[TestClass]
public sealed class SignFlipRecorderTests
{
    [TestMethod]
    public void Flip_share_counts_changed_signs_with_zero_as_its_own_sign()
    {
        using var scope = NewDisposeScope();
        var before = tensor(new float[] { 1, -1, 1, 0, -1, 1, 0, 1 });
        var after = tensor(new float[] { 1, 1, -1, 0, -1, 1, 1, 1 });
        Assert.AreEqual(3.0 / 8, SignFlipRecorder.FlipShare(before, after), 1e-12);
        Assert.AreEqual(0.0, SignFlipRecorder.FlipShare(before, before.clone()), 1e-12);
    }

    [TestMethod]
    public void Deployed_signs_are_the_quantizer_outputs_signs_in_evaluation()
    {
        using var scope = NewDisposeScope();
        // TWN: threshold 0.7 * mean |w| = 0.7 * 0.5 = 0.35, so 0.1 and -0.2 deploy as 0.
        using var twn = QuantizerFactory.Create(QuantizerRegistry.Parse("twn"));
        twn.train();
        var signs = SignFlipRecorder.DeployedSigns(tensor(new float[] { 0.9f, -0.8f, 0.1f, -0.2f }).reshape(1, 4), twn);
        CollectionAssert.AreEqual(new float[] { 1, -1, 0, 0 }, signs.reshape(-1).data<float>().ToArray());
        Assert.IsTrue(twn.training, "the quantizer's mode is restored");
    }

    [TestMethod]
    public void First_epoch_rate_equals_the_sign_changes_between_the_initial_and_the_trained_weights()
    {
        var vocabulary = Vocabulary.FromCharacters("abcdefgh ");
        var tokens = vocabulary.Encode(string.Concat(Enumerable.Repeat("abc defg hab cde fgh ", 40)));
        var options = new LanguageModelOptions
        {
            EmbeddingSize = 4,
            Recurrent = new QuantizedRecurrentOptions { HiddenSize = 6, Normalization = RecurrentNormalization.Weight, WeightQuantizer = QuantizerRegistry.Parse("bc") },
        };
        TrainingOptions Training(int epochs) => new()
        {
            Epochs = epochs, MaxStepsPerEpoch = 5, BatchSize = 4, SequenceLength = 8, Optimizer = OptimizerKind.Adam, LearningRate = 0.05, LearningRateDecay = 1, Seed = 3,
        };

        double recorded;
        using (var random = TrainingRandom.Use(3))
        using (var network = new LanguageModelNetwork(vocabulary.Count, options))
        using (var train = new TokenStreamBatcher(tokens, 4, 8, CPU))
        using (var validation = new TokenStreamBatcher(tokens, 2, 8, CPU))
        using (var task = new LanguageModelTask(network, train, validation))
        using (var recorder = new SignFlipRecorder(task, network.Recurrent.QuantizedWeights()))
        {
            TrainingLoop.Run(recorder, Training(2), "flips", null, CancellationToken.None);
            Assert.AreEqual(2, recorder.Rates.Count);
            recorded = recorder.Rates[0]["layers.0.weight_hh"];
        }

        using var scope = NewDisposeScope();
        using var random2 = TrainingRandom.Use(3);
        using var network2 = new LanguageModelNetwork(vocabulary.Count, options);
        var initial = network2.Recurrent.Layers[0].WeightHh.detach().sign().clone();
        using var train2 = new TokenStreamBatcher(tokens, 4, 8, CPU);
        using var validation2 = new TokenStreamBatcher(tokens, 2, 8, CPU);
        using var task2 = new LanguageModelTask(network2, train2, validation2);
        TrainingLoop.Run(task2, Training(1), "flips", null, CancellationToken.None);
        double expected = initial.ne(network2.Recurrent.Layers[0].WeightHh.detach().sign()).to_type(ScalarType.Float64).mean().item<double>();

        Assert.IsTrue(expected > 0, "five steps at rate 0.05 flip some signs");
        Assert.AreEqual(expected, recorded, 1e-12);
    }
}
