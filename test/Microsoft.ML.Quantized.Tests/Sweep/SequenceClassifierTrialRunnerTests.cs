using Microsoft.ML.Quantized.Sweep;
using Microsoft.ML.Quantized.Tests.MLNet;

namespace Microsoft.ML.Quantized.Tests.Sweep;

[TestClass]
public sealed class SequenceClassifierTrialRunnerTests
{
    private static QuantizationSearchSpace TinySpace() => new()
    {
        WeightQuantizers = [QuantizerChoice.TernaryWeightNet, QuantizerChoice.BinaryConnect],
        ActivationQuantizers = [QuantizerChoice.Float],
        ActivationSlope = SearchRange.Fixed(1),
        Normalizations = [RecurrentNormalization.Weight],
        Cells = [RecurrentCellKind.Gru, RecurrentCellKind.Lstm],
        HiddenSizes = [16],
        LearningRate = SearchRange.Fixed(1e-2),
        UseKure = [false],
    };

    private static TrainingOptions Training() => new() { BatchSize = 16, Optimizer = OptimizerKind.Adam, GradientClipNorm = 1, LearningRateDecay = 1 };

    private static (float[][] Frames, int[] Labels) Frames(int count, int seed)
    {
        var rows = FrameData.Rows(count, seed).ToArray();
        string[] names = ["first", "second", "third"];
        return (rows.Select(r => r.Features).ToArray(), rows.Select(r => Array.IndexOf(names, r.Label)).ToArray());
    }

    [TestMethod]
    public async Task Frame_sweep_maximizes_accuracy_and_saves_a_model_that_scores_what_was_reported()
    {
        var (trainX, trainY) = Frames(240, seed: 1);
        var (validX, validY) = Frames(90, seed: 2);
        var runner = new SequenceClassifierTrialRunner(trainX, trainY, validX, validY,
            new SequenceClassifierOptions { ClassCount = 3, FrameSize = FrameData.FrameSize }, Training());
        var result = await new QuantizationExperiment(seed: 2)
            .SetSearchSpace(TinySpace())
            .SetTuner(new GridTuner())
            .SetTrialRunner(runner)
            .SetObjective(SweepObjective.MaximizeAccuracy)
            .SetSuccessiveHalving(minEpochs: 2, maxEpochs: 6, reductionFactor: 3)
            .SetMaxModelToExplore(3)
            .SetCheckpointDirectory(SyntheticObjective.TempFile("trials"))
            .RunAsync();

        Assert.AreEqual(3, result.Trials.Count, string.Join("\n", result.Trials));
        Assert.IsTrue(result.Trials.All(t => t.Status is TrialStatus.Completed or TrialStatus.Pruned), string.Join("\n", result.Trials));
        var best = result.Best!;
        Assert.AreEqual(6, best.EpochsUsed);
        Assert.IsGreaterThan(0.6, best.Metric, $"accuracy {best.Metric} (chance 1/3)");
        Assert.IsTrue(result.Trials.Where(t => t.Status == TrialStatus.Pruned).All(t => t.Metric <= best.Metric));
        Assert.IsFalse(best.Metrics.ContainsKey(TrialReport.Auc), "three classes: no AUC");

        using var loaded = QuantizedSequenceClassifier.Load(best.ModelPath!);
        var evaluation = loaded.Evaluate(validX, validY);
        Assert.AreEqual(best.Metric, evaluation.Accuracy, 1e-12);
        Assert.AreEqual(best.Metrics[SequenceClassifierTrialRunner.LogLoss], evaluation.LogLoss, 1e-9);
        Assert.AreEqual(best.PackedBytes, loaded.SizeReport().PackedBytes);
        Assert.AreEqual(best.Configuration.Cell, loaded.Options.Recurrent.Cell);
    }

    [TestMethod]
    public void Binary_token_runner_reports_accuracy_auc_and_log_loss()
    {
        var vocabulary = new Dictionary<string, int>();
        (int[][], int[]) Encode(int count, int seed)
        {
            var rows = TextData.Rows(count, seed).ToArray();
            var sequences = rows.Select(r => r.Text.Split(' ').Select(w => vocabulary.TryGetValue(w, out var id) ? id : vocabulary[w] = vocabulary.Count).ToArray()).ToArray();
            return (sequences, rows.Select(r => r.Label ? 1 : 0).ToArray());
        }
        var (trainX, trainY) = Encode(200, 1);
        var (validX, validY) = Encode(80, 2);
        var training = Training();
        training.Epochs = 3;
        var runner = new SequenceClassifierTrialRunner(trainX, trainY, validX, validY, new SequenceClassifierOptions(), training);
        var configuration = new QuantizationConfiguration
        {
            WeightQuantizer = QuantizerChoice.TernaryWeightNet, Normalization = RecurrentNormalization.Weight,
            Cell = RecurrentCellKind.Gru, HiddenSize = 16, LearningRate = 1e-2,
        };
        var context = new TrialContext(0, configuration, epochs: 3, previousEpochs: 0, rung: 0, rungCount: 1, SyntheticObjective.TempFile("binary"), seed: 1);

        var report = runner.Run(context, CancellationToken.None);

        Assert.IsGreaterThan(0.8, report.Metrics[TrialReport.Accuracy]);
        Assert.IsGreaterThan(0.85, report.Metrics[TrialReport.Auc]);
        Assert.IsTrue(report.Metrics[SequenceClassifierTrialRunner.LogLoss] is > 0 and < 0.69, $"log-loss {report.Metrics[SequenceClassifierTrialRunner.LogLoss]}");
        Assert.IsTrue(File.Exists(report.ModelPath));
    }

    [TestMethod]
    public void Bad_data_fails_when_the_runner_is_made_naming_the_example()
    {
        var (trainX, trainY) = Frames(10, seed: 1);
        var (validX, validY) = Frames(5, seed: 2);
        validX[3][4] = float.NaN;
        var options = new SequenceClassifierOptions { ClassCount = 3, FrameSize = FrameData.FrameSize };
        var nan = Assert.ThrowsExactly<ArgumentException>(() => new SequenceClassifierTrialRunner(trainX, trainY, validX, validY, options));
        StringAssert.Contains(nan.Message, "validationSequences[3]");

        trainY[2] = 3;
        var label = Assert.Throws<ArgumentException>(() => new SequenceClassifierTrialRunner(trainX, trainY, Frames(5, 2).Frames, validY, options));
        StringAssert.Contains(label.Message, "trainingLabels[2] = 3");

        var empty = Assert.Throws<ArgumentException>(() => new SequenceClassifierTrialRunner(Array.Empty<float[]>(), [], Frames(5, 2).Frames, validY, options));
        StringAssert.Contains(empty.Message, "trainingSequences is empty");
    }
}
