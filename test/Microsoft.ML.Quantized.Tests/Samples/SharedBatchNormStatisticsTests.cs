using Microsoft.ML.Quantized.Samples.Reproduction;
using static Microsoft.ML.Quantized.Tests.RecurrentTestSupport;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized.Tests.Samples;

/// <summary>Hou et al. question 3's diagnostic (shared vs per-step batch-norm statistics) against hand-worked values and a direct simulation.</summary>
[TestClass]
public sealed class SharedBatchNormStatisticsTests
{
    [TestMethod]
    public void Fold_weights_steps_by_the_running_averages_fixed_point()
    {
        using var scope = NewDisposeScope();
        // Momentum 0.5, two steps: weights 0.5 * 0.5 / 0.75 = 1/3 and 0.5 / 0.75 = 2/3.
        var means = tensor(new double[] { 3, 0, 6, 9 }).reshape(2, 2);
        var variances = tensor(new double[] { 1, 4, 4, 1 }).reshape(2, 2);
        var (mean, variance) = SharedBatchNormStatistics.Fold(means, variances, 0.5);
        // f0: 3/3 + 12/3 = 5, var 1/3 + 8/3 = 3; f1: 0 + 18/3 = 6, var 4/3 + 2/3 = 2.
        AssertClose(tensor(new double[] { 5, 6 }), mean, 1e-12, "mean");
        AssertClose(tensor(new double[] { 3, 2 }), variance, 1e-12, "variance");

        // Independently: fold steps 0, 1, 2 in order with momentum 0.1, batch after batch, until the average settles.
        var steps = tensor(new double[] { 1, -2, 7 });
        double running = 0;
        for (int batch = 0; batch < 2000; batch++)
            for (int t = 0; t < 3; t++)
                running = 0.9 * running + 0.1 * steps[t].item<double>();
        var (folded, _) = SharedBatchNormStatistics.Fold(steps.unsqueeze(1), steps.unsqueeze(1), 0.1);
        Assert.AreEqual(running, folded.item<double>(), 1e-12);
    }

    [TestMethod]
    public void Deviations_measure_each_steps_offset_and_scale_under_the_shared_set()
    {
        using var scope = NewDisposeScope();
        using var norm = ThreeSets();
        // Shared set (weights 1/3, 2/3): f0 mean 2, var 1/3 + 8/3 = 3; f1 mean 2, var 3. sd_s = sqrt 3 for both.
        // Step 0: offsets 2/sqrt3 and 4/sqrt3 (mean sqrt3), sd ratios 1/sqrt3 and 3/sqrt3 (mean 2/sqrt3).
        // Step 1: offsets 1/sqrt3 and 2/sqrt3 (mean 1.5/sqrt3), sd ratios 2/sqrt3 and 0 (mean 1/sqrt3).
        var deviations = SharedBatchNormStatistics.Deviations(norm, steps: 2);
        double r3 = Math.Sqrt(3);
        Assert.HasCount(2, deviations);
        Assert.AreEqual(r3, deviations[0].MeanOffset, 1e-6);
        Assert.AreEqual(2 / r3, deviations[0].ScaleRatio, 1e-6);
        Assert.AreEqual(1.5 / r3, deviations[1].MeanOffset, 1e-6);
        Assert.AreEqual(1 / r3, deviations[1].ScaleRatio, 1e-6);
        Assert.AreEqual(1, deviations[1].Step);
        Assert.ThrowsExactly<ArgumentException>(() => SharedBatchNormStatistics.Deviations(norm, steps: 4));
    }

    [TestMethod]
    public void Sharing_replaces_every_set_so_evaluation_normalizes_every_step_alike()
    {
        using var scope = NewDisposeScope();
        using var norm = ThreeSets();
        SharedBatchNormStatistics.ShareStatistics(norm, steps: 2);
        norm.eval();
        var x = tensor(new float[] { 2 + 1.7320508f, -1.7320508f }).reshape(1, 2);
        // (x - 2) / sqrt 3 * 0.1 (the initial gain): 0.1 and -0.1 * (2 + sqrt 3) / sqrt 3 at every step, the unused one included.
        var expected = tensor(new float[] { 0.1f, -0.1f * (2 + 1.7320508f) / 1.7320508f }).reshape(1, 2);
        for (int t = 0; t < 4; t++)
            AssertClose(expected, norm.Forward(x, t), 1e-6, $"step {t}");
    }

    [TestMethod]
    public void Input_scores_use_the_quantized_weights_and_the_set_evaluation_reads_at_each_step()
    {
        using var scope = NewDisposeScope();
        // One input, hidden 1 (4 gate rows), the test's scaled sign: W_x = mean|w| sign(w) = 0.275 [1, -1, 1, -1].
        QuantizedLstmCell Cell(int sets)
        {
            var options = Options(RecurrentCellKind.Lstm, 1, normalization: RecurrentNormalization.BatchPerStep);
            options.MaxNormalizedSteps = sets;
            var cell = new QuantizedLstmCell("lstm", 1, options, Sign, Float);
            using (no_grad())
            {
                cell.WeightIh.copy_(tensor(new float[] { 0.3f, -0.2f, 0.5f, -0.1f }).reshape(4, 1));
                // Step 0: mean 0, sd sqrt(0.25 - 1e-5 + 1e-5) = 0.5; step 1 (when it has a set): mean 1, sd 2.
                cell.InputBatchNorm!.RunningMean.copy_(tensor(new float[] { 0, 0, 0, 0, 1, 1, 1, 1 }[..(4 * sets)]).reshape(sets, 4));
                cell.InputBatchNorm!.RunningVar.copy_(tensor(new float[] { 0.25f - 1e-5f, 0.25f - 1e-5f, 0.25f - 1e-5f, 0.25f - 1e-5f, 4 - 1e-5f, 4 - 1e-5f, 4 - 1e-5f, 4 - 1e-5f }[..(4 * sets)]).reshape(sets, 4));
            }
            cell.eval();
            return cell;
        }
        var sequences = new[] { new float[] { 2, 3 }, new float[] { 0, -1 } };

        // Step 0: |0.55 [1, -1, 1, -1] / 0.5| = 1.1 for the first sequence, 0 for the second. Step 1: |(0.825 [1, -1, 1, -1] - 1) / 2|
        // up to 0.9125, |(0.275 [-1, 1, -1, 1] - 1) / 2| up to 0.6375.
        using var perStep = Cell(2);
        var scores = SharedBatchNormStatistics.InputScores(perStep, sequences, frameSize: 1, bound: 1);
        Assert.AreEqual(1.1, scores[0].Largest, 1e-5);
        Assert.AreEqual(0.5, scores[0].ShareAboveBound, 1e-12);
        Assert.AreEqual(0.9125, scores[1].Largest, 1e-5);
        Assert.AreEqual(0, scores[1].ShareAboveBound, 1e-12);

        // One set: step 1 reads step 0's (mean 0, sd 0.5): 0.825 / 0.5 = 1.65 and 0.275 / 0.5 = 0.55.
        using var oneSet = Cell(1);
        var clamped = SharedBatchNormStatistics.InputScores(oneSet, sequences, frameSize: 1, bound: 1);
        Assert.AreEqual(1.65, clamped[1].Largest, 1e-5);
        Assert.AreEqual(0.5, clamped[1].ShareAboveBound, 1e-12);

        // 7,001 copies of the pair, 14,002 two-step images, are scored in several chunks: the largest |z| is the maximum
        // over chunks and the share a count over every image, so both equal the pair's.
        var many = SharedBatchNormStatistics.InputScores(perStep, Enumerable.Repeat(sequences, 7_001).SelectMany(s => s).ToArray(), frameSize: 1, bound: 1);
        Assert.AreEqual(1.1, many[0].Largest, 1e-5);
        Assert.AreEqual(0.5, many[0].ShareAboveBound, 1e-12);
        Assert.AreEqual(0.9125, many[1].Largest, 1e-5);
    }

    [TestMethod]
    public void Recalibration_folds_each_batchs_statistics_into_the_running_sets_and_leaves_evaluation_mode()
    {
        manual_seed(11);
        using var scope = NewDisposeScope();
        var options = new SequenceClassifierOptions
        {
            ClassCount = 2, FrameSize = 2, InitialStateNoise = 0.5,
            Recurrent = new QuantizedRecurrentOptions { HiddenSize = 3, Normalization = RecurrentNormalization.BatchPerStep, MaxNormalizedSteps = 2 },
        };
        using var network = new SequenceClassifierNetwork(SequenceClassifierInputKind.Frames, 2, options);
        var norm = network.Recurrent.Layers[0].InputBatchNorm!;
        var hiddenNorm = network.Recurrent.Layers[0].HiddenBatchNorm!;
        using (no_grad())
        {
            norm.RunningMean.fill_(100);
            hiddenNorm.RunningMean.fill_(100);
        }
        var random = new Random(2);
        var frames = Enumerable.Range(0, 6).Select(_ => Enumerable.Range(0, 4).Select(_ => (float)random.NextDouble()).ToArray()).ToList();

        SharedBatchNormStatistics.Recalibrate(network, frames, frameSize: 2, batches: 1, batchSize: 4);

        // Independently: step t's batch mean of W_x x over the first 4 sequences, folded once with momentum 0.1.
        var weight = network.Recurrent.Layers[0].WeightIh.detach();
        for (int t = 0; t < 2; t++)
        {
            var x = tensor(frames.Take(4).SelectMany(f => f.Skip(2 * t).Take(2)).ToArray()).reshape(4, 2);
            var expected = 0.9 * 100 + 0.1 * x.matmul(weight.t()).mean([0]);
            AssertClose(expected, norm.RunningMean[t], 1e-5, $"step {t}");
        }
        // The initial state is evaluation's zeros, not training's N(0, 0.5^2) draws: W_h h is 0 at step 0, so its set folds in 0.
        AssertClose(full(hiddenNorm.RunningMean[0].shape, 90f), hiddenNorm.RunningMean[0], 1e-5, "W_h h at step 0");
        Assert.IsFalse(network.training, "left in evaluation mode");
        Assert.ThrowsExactly<ArgumentException>(() => SharedBatchNormStatistics.Recalibrate(network, frames, 2, batches: 2, batchSize: 4));
    }

    [TestMethod]
    public void Per_step_and_shared_statistics_train_the_same_weights()
    {
        // Training normalizes with batch statistics either way, so two runs that differ only in the statistics kept for
        // evaluation end with the same weights when they keep the same epoch (one epoch here).
        var random = new Random(5);
        var sequences = Enumerable.Range(0, 40).Select(_ => Enumerable.Range(0, 12).Select(_ => (float)random.NextDouble()).ToArray()).ToList();
        var labels = sequences.Select(s => s.Sum() > 6 ? 1 : 0).ToArray();
        QuantizedSequenceClassifier Train(RecurrentNormalization normalization) => QuantizedSequenceClassifier.Train(sequences, labels, null, null,
            new SequenceClassifierOptions
            {
                ClassCount = 2, FrameSize = 3,
                Recurrent = new QuantizedRecurrentOptions { HiddenSize = 6, Normalization = normalization, WeightQuantizer = QuantizerRegistry.Parse("twn") },
            },
            new TrainingOptions { Epochs = 1, BatchSize = 8, Optimizer = OptimizerKind.Adam, LearningRate = 1e-2, Seed = 3 });
        using var perStep = Train(RecurrentNormalization.BatchPerStep);
        using var shared = Train(RecurrentNormalization.BatchShared);
        var a = perStep.Network.Recurrent.Layers[0];
        var b = shared.Network.Recurrent.Layers[0];
        AssertClose(a.WeightHh, b.WeightHh, 0, "W_hh");
        AssertClose(a.WeightIh, b.WeightIh, 0, "W_ih");
        Assert.AreEqual(1, b.InputBatchNorm!.Steps);
        Assert.AreEqual(4, a.InputBatchNorm!.Steps, "one set per step of the 4-frame sequences");
    }

    /// <summary>
    /// Two features, three sets of running statistics, momentum 0.5, epsilon 0: means (0, 6), (3, 0), variances (1, 9), (4, 0)
    /// for steps 0 and 1, and a set 2 of 100s that a two-step fold must not count.
    /// </summary>
    private static RecurrentBatchNorm ThreeSets()
    {
        var norm = new RecurrentBatchNorm("bn", 2, steps: 3, momentum: 0.5, epsilon: 0);
        using (no_grad())
        {
            norm.RunningMean.copy_(tensor(new float[] { 0, 6, 3, 0, 100, 100 }).reshape(3, 2));
            norm.RunningVar.copy_(tensor(new float[] { 1, 9, 4, 0, 100, 100 }).reshape(3, 2));
        }
        return norm;
    }
}
