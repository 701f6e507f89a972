using System.Collections.Concurrent;
using Microsoft.ML.Quantized.Sweep;

namespace Microsoft.ML.Quantized.Tests.Sweep;

[TestClass]
public sealed class SuccessiveHalvingTests
{
    [TestMethod]
    public void RungsEndAtTheMaximumBudget()
    {
        CollectionAssert.AreEqual(new[] { 1, 3, 9 }, new SuccessiveHalving(1, 9, 3).Rungs.ToArray());
        CollectionAssert.AreEqual(new[] { 1, 3, 10 }, new SuccessiveHalving(1, 10, 3).Rungs.ToArray());
        CollectionAssert.AreEqual(new[] { 2, 6 }, new SuccessiveHalving(2, 6, 3).Rungs.ToArray());
        CollectionAssert.AreEqual(new[] { 1, 2, 4, 8 }, new SuccessiveHalving(1, 8, 2).Rungs.ToArray());
        CollectionAssert.AreEqual(new[] { 5 }, SuccessiveHalving.Single(5).Rungs.ToArray());
        Assert.AreEqual(9, new SuccessiveHalving(1, 9, 3).BracketSize);
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new QuantizationExperiment().SetSuccessiveHalving(0, 9));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new QuantizationExperiment().SetSuccessiveHalving(3, 2));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new QuantizationExperiment().SetSuccessiveHalving(1, 9, reductionFactor: 1));
    }

    [TestMethod]
    public async Task NineConfigurationsPromoteThreeThenOne()
    {
        var calls = new ConcurrentQueue<TrialContext>();
        var monitor = new RecordingMonitor();
        var result = await new QuantizationExperiment(seed: 7)
            .SetSearchSpace(new QuantizationSearchSpace())
            .SetTuner(new RandomTuner())
            .SetSuccessiveHalving(minEpochs: 1, maxEpochs: 9, reductionFactor: 3)
            .SetMaxModelToExplore(9)
            .SetMonitor(monitor)
            .SetTrialRunner((context, _) => { calls.Enqueue(context); return SyntheticObjective.Report(context); })
            .RunAsync();

        var list = calls.ToList();
        Assert.AreEqual(9 + 3 + 1, list.Count);
        Assert.IsTrue(list.Take(9).All(c => c.Epochs == 1 && c.PreviousEpochs == 0 && c.Rung == 0 && c.RungCount == 3));
        Assert.IsTrue(list.Skip(9).Take(3).All(c => c.Epochs == 3 && c.PreviousEpochs == 1 && c.Rung == 1));
        Assert.IsTrue(list[12].Epochs == 9 && list[12].PreviousEpochs == 3 && list[12].Rung == 2);

        var byRungZero = result.Trials.OrderBy(t => t.Rungs[0].Metric).Select(t => t.Id).ToArray();
        CollectionAssert.AreEquivalent(byRungZero.Take(3).ToArray(), list.Skip(9).Take(3).Select(c => c.TrialId).ToArray(), "the top third of rung 1 is promoted");
        Assert.AreEqual(byRungZero[0], list[12].TrialId, "the best of rung 2 goes on to the full budget");
        Assert.AreEqual(1, result.Trials.Count(t => t.Status == TrialStatus.Completed));
        Assert.AreEqual(6, result.Trials.Count(t => t.Status == TrialStatus.Pruned && t.EpochsUsed == 1));
        Assert.AreEqual(2, result.Trials.Count(t => t.Status == TrialStatus.Pruned && t.EpochsUsed == 3));
        Assert.AreEqual(byRungZero[0], result.Best!.Id);
        Assert.AreEqual(9, result.Best.EpochsUsed);
        CollectionAssert.AreEqual(new[] { 1, 3, 9 }, result.Best.Rungs.Select(r => r.Epochs).ToArray());
        Assert.AreEqual(1, list.Where(c => c.TrialId == byRungZero[0]).Select(c => c.CheckpointDirectory).Distinct().Count(), "a trial keeps its checkpoint folder");
        Assert.AreEqual(9, list.Take(9).Select(c => c.CheckpointDirectory).Distinct().Count(), "each trial has its own folder");
        Assert.AreEqual(13, monitor.Running.Count);
        Assert.AreEqual(9, monitor.Completed.Count);
        Assert.AreEqual(0, monitor.Failed.Count);
    }

    [TestMethod]
    public async Task ResultsDoNotDependOnParallelism()
    {
        async Task<SweepResult> Run(int parallelism) => await new QuantizationExperiment(seed: 11)
            .SetTuner(new TreeParzenTuner(startupTrials: 9))
            .SetSuccessiveHalving(1, 9)
            .SetMaxModelToExplore(27)
            .SetParallelism(parallelism)
            .SetTrialRunner((context, _) => { Thread.Sleep(1); return SyntheticObjective.Report(context); })
            .RunAsync();

        var one = await Run(1);
        var three = await Run(3);
        Assert.AreEqual(27, one.Trials.Count);
        CollectionAssert.AreEqual(
            one.Trials.Select(t => $"{t.Id} {t.Status} {t.Metric:R} {t.EpochsUsed} {t.Configuration.Key}").ToArray(),
            three.Trials.Select(t => $"{t.Id} {t.Status} {t.Metric:R} {t.EpochsUsed} {t.Configuration.Key}").ToArray());
        Assert.AreEqual(3, one.Trials.Count(t => t.Status == TrialStatus.Completed), "one completed trial per bracket");
    }
}
