using System.Diagnostics;
using Microsoft.ML.Quantized.Sweep;

namespace Microsoft.ML.Quantized.Tests.Sweep;

[TestClass]
public sealed class LanguageModelTrialRunnerTests
{
    [TestMethod]
    public async Task TinySweepTrainsPrunesResumesAndSavesTheBestModel()
    {
        var train = TinyCorpus.Text(160);
        var valid = TinyCorpus.Text(30, seed: 11);
        var chars = Vocabulary.FromCharacters(train + valid);
        var trainingTemplate = TinyCorpus.Training(1);
        trainingTemplate.MaxStepsPerEpoch = 3;
        var runner = new LanguageModelTrialRunner(chars, chars.Encode(train), chars.Encode(valid), TinyCorpus.Model(), trainingTemplate);
        var space = new QuantizationSearchSpace
        {
            WeightQuantizers = [QuantizerChoice.TernaryWeightNet, QuantizerChoice.BinaryConnect],
            ActivationQuantizers = [QuantizerChoice.Float],
            ActivationSlope = SearchRange.Fixed(1),
            Normalizations = [RecurrentNormalization.None],
            Cells = [RecurrentCellKind.Lstm],
            HiddenSizes = [32],
            LearningRate = SearchRange.Fixed(1e-2),
            UseKure = [false, true],
        };
        var stateFile = SyntheticObjective.TempFile("state.json");
        var clock = Stopwatch.StartNew();
        var result = await new QuantizationExperiment(seed: 3)
            .SetSearchSpace(space)
            .SetTuner(new GridTuner())
            .SetSuccessiveHalving(minEpochs: 1, maxEpochs: 3)
            .SetMaxModelToExplore(3)
            .SetStateFile(stateFile)
            .SetTrialRunner(runner)
            .RunAsync();
        Assert.IsTrue(clock.Elapsed < TimeSpan.FromSeconds(30), $"took {clock.Elapsed}");

        Assert.AreEqual(3, result.Trials.Count, string.Join("\n", result.Trials));
        Assert.IsTrue(result.Trials.All(t => t.Status != TrialStatus.Failed), string.Join("\n", result.Trials));
        Assert.AreEqual(2, result.Trials.Count(t => t.Configuration.WeightQuantizer == QuantizerChoice.TernaryWeightNet), "grid order: KURE varies fastest");
        Assert.IsTrue(result.Trials.Any(t => t.Configuration.UseKure));
        var best = result.Best!;
        Assert.AreEqual(3, best.EpochsUsed);
        Assert.AreEqual(2, result.Trials.Count(t => t.Status == TrialStatus.Pruned && t.EpochsUsed == 1));
        Assert.IsTrue(best.Metric > 1 && best.Metric < chars.Count, $"perplexity {best.Metric}");
        Assert.IsTrue(best.PackedBytes > 0);

        // The best model is saved, loads, and scores what the sweep reported.
        Assert.IsTrue(File.Exists(best.ModelPath), best.ModelPath);
        using var loaded = QuantizedLanguageModel.Load(best.ModelPath!);
        Assert.AreEqual(best.Metric, loaded.Evaluate(valid).Perplexity, 1e-9);
        Assert.AreEqual(best.PackedBytes, loaded.SizeReport().PackedBytes);

        // Promotion resumed from the 1-epoch checkpoint: same model as 3 epochs in one go.
        var model = TinyCorpus.Model();
        model.Recurrent = best.Configuration.ToRecurrentOptions(model.Recurrent);
        var straight = best.Configuration.ToTrainingOptions(trainingTemplate);
        straight.Epochs = 3;
        straight.Kure = best.Configuration.UseKure ? new KureOptions() : null;
        using var direct = QuantizedLanguageModel.Train(chars, chars.Encode(train), chars.Encode(valid), model, straight);
        Assert.AreEqual(best.Metric, direct.Evaluate(valid).Perplexity, 1e-6);
    }
}
