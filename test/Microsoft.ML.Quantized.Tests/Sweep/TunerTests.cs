using Microsoft.ML.Quantized.Sweep;

namespace Microsoft.ML.Quantized.Tests.Sweep;

[TestClass]
public sealed class TunerTests
{
    private static SweepResult Sweep(ISweepTuner tuner, QuantizationSearchSpace space, int trials, int seed) =>
        new QuantizationExperiment(seed)
            .SetSearchSpace(space)
            .SetTuner(tuner)
            .SetEpochs(1)
            .SetMaxModelToExplore(trials)
            .SetTrialRunner((context, _) => SyntheticObjective.Report(context))
            .RunAsync().GetAwaiter().GetResult();

    private static void AssertValid(SweepResult result, QuantizationSearchSpace space)
    {
        foreach (var t in result.Trials)
        {
            Assert.IsTrue(space.Contains(t.Configuration), $"outside the space: {t.Configuration.Key}");
            t.Configuration.Validate("trial");
        }
        Assert.AreEqual(result.Trials.Count, result.Trials.Select(t => t.Configuration.Key).Distinct().Count(), "no configuration is tried twice");
    }

    [TestMethod]
    public void GridEnumeratesExactlyTheGridAndFindsItsOptimum()
    {
        var space = SyntheticObjective.SmallSpace();
        var result = Sweep(new GridTuner(), space, trials: 10_000, seed: 1);
        Assert.AreEqual(SweepStopReason.SearchSpaceExhausted, result.StopReason);
        Assert.AreEqual(432, result.Trials.Count);
        AssertValid(result, space);
        Assert.AreEqual(3, result.Trials.Select(t => t.Configuration.ActivationSlope).Distinct().Count());
        CollectionAssert.AreEquivalent(new[] { 0.001, 0.00316, 0.01 }, result.Trials.Select(t => t.Configuration.LearningRate).Distinct().ToArray());
        var best = result.Best!.Configuration;
        Assert.AreEqual(RecurrentCellKind.Gru, best.Cell);
        Assert.AreEqual(RecurrentNormalization.Layer, best.Normalization);
        Assert.AreEqual(128, best.HiddenSize);
        Assert.AreEqual(0.625, best.ActivationSlope);
        Assert.AreEqual(0.01, best.LearningRate, "log10 distance to 0.006: 0.22 for 0.01, 0.28 for 0.00316");
        Assert.IsTrue(best.UseKure);
        Assert.AreEqual("twn", best.WeightQuantizer.Name, "twn and alt2 tie (2 bits, same size): the lower id wins");
    }

    [TestMethod]
    public void RandomIsSeededValidAndImproves()
    {
        var space = new QuantizationSearchSpace();
        var a = Sweep(new RandomTuner(), space, 40, seed: 3);
        var b = Sweep(new RandomTuner(), space, 40, seed: 3);
        var c = Sweep(new RandomTuner(), space, 40, seed: 4);
        AssertValid(a, space);
        CollectionAssert.AreEqual(a.Trials.Select(t => t.Configuration.Key).ToArray(), b.Trials.Select(t => t.Configuration.Key).ToArray());
        CollectionAssert.AreNotEqual(a.Trials.Select(t => t.Configuration.Key).ToArray(), c.Trials.Select(t => t.Configuration.Key).ToArray());
        var losses = a.Trials.Select(t => t.Metric).OrderBy(x => x).ToArray();
        Assert.IsTrue(a.Best!.Metric < losses[losses.Length / 2], "the best of 40 beats the median trial");
    }

    [TestMethod]
    public void TreeParzenIsValidDeterministicAndBeatsRandom()
    {
        var space = new QuantizationSearchSpace();
        var tpeBest = new List<double>();
        var randomBest = new List<double>();
        for (int seed = 1; seed <= 5; seed++)
        {
            var tpe = Sweep(new TreeParzenTuner(), space, 40, seed);
            AssertValid(tpe, space);
            tpeBest.Add(tpe.Best!.Metric);
            randomBest.Add(Sweep(new RandomTuner(), space, 40, seed).Best!.Metric);
            double firstTen = tpe.Trials.Take(10).Min(t => t.Metric);
            Assert.IsTrue(tpe.Best.Metric < firstTen, $"seed {seed}: TPE should improve on its random warm-up ({tpe.Best.Metric:F3} vs {firstTen:F3})");
        }
        double median = randomBest.OrderBy(x => x).ElementAt(2);
        Assert.IsTrue(tpeBest.Average() < randomBest.Average(), $"TPE mean best {tpeBest.Average():F3} vs random {randomBest.Average():F3}");
        Assert.IsTrue(tpeBest.Count(x => x < median) >= 4, $"TPE bests [{string.Join(", ", tpeBest.Select(x => x.ToString("F3")))}] vs random median {median:F3}");

        var again = Sweep(new TreeParzenTuner(), space, 25, seed: 2);
        var once = Sweep(new TreeParzenTuner(), space, 25, seed: 2);
        CollectionAssert.AreEqual(again.Trials.Select(t => t.Configuration.Key).ToArray(), once.Trials.Select(t => t.Configuration.Key).ToArray());
    }

    [TestMethod]
    public void SmallSpaceIsExhaustedWithoutRepeats()
    {
        var space = new QuantizationSearchSpace
        {
            WeightQuantizers = [QuantizerChoice.BinaryConnect, QuantizerChoice.TernaryWeightNet],
            ActivationQuantizers = [QuantizerChoice.Float],
            ActivationSlope = SearchRange.Fixed(1),
            Normalizations = [RecurrentNormalization.Layer],
            Cells = [RecurrentCellKind.Lstm, RecurrentCellKind.Gru],
            HiddenSizes = [32],
            LearningRate = SearchRange.Fixed(0.01),
            UseKure = [false],
        };
        foreach (ISweepTuner tuner in new ISweepTuner[] { new GridTuner(), new RandomTuner(), new TreeParzenTuner(startupTrials: 2) })
        {
            var result = Sweep(tuner, space, 10, seed: 1);
            Assert.AreEqual(4, result.Trials.Count, tuner.GetType().Name);
            Assert.AreEqual(SweepStopReason.SearchSpaceExhausted, result.StopReason, tuner.GetType().Name);
            AssertValid(result, space);
        }
    }
}
