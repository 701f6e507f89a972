using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.ML.Quantized.Sweep;

namespace Microsoft.ML.Quantized.Tests.Sweep;

[TestClass]
public sealed class QuantizationExperimentTests
{
    private static QuantizationExperiment Experiment(Func<TrialContext, CancellationToken, TrialReport> runner, int trials = 18) =>
        new QuantizationExperiment(seed: 5)
            .SetTuner(new TreeParzenTuner(startupTrials: 9))
            .SetSuccessiveHalving(1, 9)
            .SetMaxModelToExplore(trials)
            .SetTrialRunner(runner);

    private static string[] Summary(SweepResult result) =>
        result.Trials.Select(t => $"{t.Id} {t.Bracket} {t.Status} {t.Metric:R} {t.PackedBytes} {t.EpochsUsed} {t.Configuration.Key}").ToArray();

    [TestMethod]
    public async Task ResumeAfterAKillKeepsFinishedRunsAndDoesNotRepeatThem()
    {
        var reference = await Experiment((c, _) => SyntheticObjective.Report(c)).RunAsync();
        Assert.AreEqual(18, reference.Trials.Count);

        // The "kill": on the 17th run (bracket 1, rung 0: its fourth trial), copy the state file as it is on disk at that moment,
        // which is what a killed process leaves behind.
        var stateFile = SyntheticObjective.TempFile("state.json");
        var snapshot = SyntheticObjective.TempFile("killed.json");
        int calls = 0;
        var first = await Experiment((c, _) =>
        {
            if (Interlocked.Increment(ref calls) == 17) File.Copy(stateFile, snapshot);
            return SyntheticObjective.Report(c);
        }).SetStateFile(stateFile).RunAsync();
        CollectionAssert.AreEqual(Summary(reference), Summary(first), "a state file does not change the results");

        var saved = SweepState.Load(snapshot)!;
        var done = saved.Trials.SelectMany(t => t.Rungs.Select(r => (t.Id, r.Epochs))).ToHashSet();
        Assert.AreEqual(16, done.Count, "16 runs had finished at the kill");
        Assert.IsTrue(saved.Trials.Count(t => t.Status is not null) >= 9, "bracket 0 was final");

        var rerun = new ConcurrentBag<(int, int)>();
        var resumed = await Experiment((c, _) => { rerun.Add((c.TrialId, c.Epochs)); return SyntheticObjective.Report(c); })
            .SetStateFile(snapshot).RunAsync();
        Assert.IsFalse(rerun.Any(done.Contains), "no finished run is repeated: " + string.Join(", ", rerun.Where(done.Contains)));
        Assert.AreEqual(13 + 13 - 16, rerun.Count, "only the rest of bracket 1 runs again");
        CollectionAssert.AreEqual(Summary(reference), Summary(resumed), "a resumed sweep ends where an uninterrupted one does");

        var another = await Experiment((c, _) => throw new AssertFailedException("nothing is left to run"), trials: 18).SetStateFile(snapshot).RunAsync();
        CollectionAssert.AreEqual(Summary(reference), Summary(another));
        Assert.AreEqual(SweepStopReason.TrialBudget, another.StopReason);
    }

    [TestMethod]
    public async Task ResumeAfterCancellationRerunsOnlyTheInterruptedTrial()
    {
        var stateFile = SyntheticObjective.TempFile("state.json");
        using var cts = new CancellationTokenSource();
        var first = await new QuantizationExperiment(seed: 3)
            .SetTuner(new RandomTuner())
            .SetEpochs(2)
            .SetMaxModelToExplore(8)
            .SetStateFile(stateFile)
            .SetTrialRunner((c, token) =>
            {
                if (c.TrialId == 5)
                {
                    cts.Cancel();
                    token.WaitHandle.WaitOne(TimeSpan.FromSeconds(10));
                    token.ThrowIfCancellationRequested();
                }
                return SyntheticObjective.Report(c);
            })
            .RunAsync(cts.Token);
        Assert.AreEqual(SweepStopReason.Cancelled, first.StopReason);
        Assert.AreEqual(5, first.Trials.Count(t => t.Status == TrialStatus.Completed));
        Assert.AreEqual(TrialStatus.Stopped, first.Trials.Single(t => t.Id == 5).Status);

        var ran = new ConcurrentBag<int>();
        var second = await new QuantizationExperiment(seed: 3)
            .SetTuner(new RandomTuner())
            .SetEpochs(2)
            .SetMaxModelToExplore(8)
            .SetStateFile(stateFile)
            .SetTrialRunner((c, _) => { ran.Add(c.TrialId); return SyntheticObjective.Report(c); })
            .RunAsync();
        CollectionAssert.AreEquivalent(new[] { 5, 6, 7 }, ran.ToArray());
        Assert.AreEqual(8, second.Trials.Count(t => t.Status == TrialStatus.Completed));
        CollectionAssert.AreEqual(first.Trials.Take(5).Select(t => t.Configuration.Key).ToArray(), second.Trials.Take(5).Select(t => t.Configuration.Key).ToArray());
    }

    [TestMethod]
    public async Task CancellationStopsPromptlyAndReturnsWhatFinished()
    {
        using var cts = new CancellationTokenSource();
        var clock = Stopwatch.StartNew();
        var result = await new QuantizationExperiment()
            .SetTuner(new RandomTuner())
            .SetEpochs(1)
            .SetMaxModelToExplore(1000)
            .SetParallelism(2)
            .SetTrialRunner((c, token) =>
            {
                if (c.TrialId >= 4)
                {
                    if (c.TrialId == 4) cts.CancelAfter(200);
                    for (int i = 0; i < 1000; i++) { token.ThrowIfCancellationRequested(); Thread.Sleep(10); }
                }
                return SyntheticObjective.Report(c);
            })
            .RunAsync(cts.Token);
        clock.Stop();
        Assert.IsTrue(clock.Elapsed < TimeSpan.FromSeconds(3), $"took {clock.Elapsed}");
        Assert.AreEqual(SweepStopReason.Cancelled, result.StopReason);
        Assert.AreEqual(4, result.Trials.Count(t => t.Status == TrialStatus.Completed));
        Assert.IsTrue(result.Trials.Where(t => t.Id >= 4).All(t => t.Status == TrialStatus.Stopped));
        Assert.IsNotNull(result.Best);
    }

    [TestMethod]
    public async Task ParallelTrialsShareLibtorchThreadsAndRestoreThem()
    {
        int before = TorchSharp.torch.get_num_threads();
        var seen = new System.Collections.Concurrent.ConcurrentBag<int>();
        await new QuantizationExperiment()
            .SetTuner(new RandomTuner())
            .SetEpochs(1)
            .SetMaxModelToExplore(4)
            .SetParallelism(2)
            .SetTrialRunner((c, _) =>
            {
                seen.Add(TorchSharp.torch.get_num_threads());
                return SyntheticObjective.Report(c);
            })
            .RunAsync();
        Assert.IsTrue(seen.All(t => t == Math.Max(1, Environment.ProcessorCount / 2)), $"threads seen: {string.Join(", ", seen)} on {Environment.ProcessorCount} cores");
        Assert.AreEqual(before, TorchSharp.torch.get_num_threads());
    }

    [TestMethod]
    public async Task NativeErrorsAreRetriedOnceOtherErrorsAreNot()
    {
        var calls = new System.Collections.Concurrent.ConcurrentDictionary<int, int>();
        var result = await new QuantizationExperiment()
            .SetTuner(new RandomTuner())
            .SetEpochs(1)
            .SetMaxModelToExplore(3)
            .SetTrialRunner((c, _) =>
            {
                int call = calls.AddOrUpdate(c.TrialId, 1, (_, n) => n + 1);
                return c.TrialId switch
                {
                    0 when call == 1 => throw new System.Runtime.InteropServices.ExternalException("Unknown scalar type."),
                    1 => throw new System.Runtime.InteropServices.ExternalException("Unknown scalar type."),
                    2 => throw new InvalidOperationException("a real bug"),
                    _ => SyntheticObjective.Report(c),
                };
            })
            .RunAsync();
        var byId = result.Trials.ToDictionary(t => t.Id);
        Assert.AreEqual(TrialStatus.Completed, byId[0].Status, "a transient native error is retried");
        Assert.AreEqual(2, calls[0]);
        Assert.AreEqual(TrialStatus.Failed, byId[1].Status);
        Assert.AreEqual(2, calls[1], "retried once, then recorded");
        StringAssert.Contains(byId[1].Error, "Unknown scalar type");
        Assert.AreEqual(TrialStatus.Failed, byId[2].Status);
        Assert.AreEqual(1, calls[2], "managed errors are not retried");
    }

    [TestMethod]
    public async Task TimeBudgetEndsTheSweep()
    {
        var clock = Stopwatch.StartNew();
        var result = await new QuantizationExperiment()
            .SetTuner(new RandomTuner())
            .SetEpochs(1)
            .SetTrainingTimeInSeconds(0.5)
            .SetTrialRunner((c, token) => { token.WaitHandle.WaitOne(50); token.ThrowIfCancellationRequested(); return SyntheticObjective.Report(c); })
            .RunAsync();
        Assert.IsTrue(clock.Elapsed < TimeSpan.FromSeconds(3), $"took {clock.Elapsed}");
        Assert.AreEqual(SweepStopReason.TimeBudget, result.StopReason);
        Assert.IsTrue(result.Trials.Count(t => t.Status == TrialStatus.Completed) >= 2);
    }

    [TestMethod]
    public async Task AFailingTrialIsRecordedAndTheSweepGoesOn()
    {
        var monitor = new RecordingMonitor();
        var result = await Experiment((c, _) => c.Configuration.Normalization == RecurrentNormalization.None
                ? throw new InvalidOperationException("training diverged")
                : SyntheticObjective.Report(c))
            .SetMonitor(monitor)
            .RunAsync();
        Assert.AreEqual(18, result.Trials.Count);
        var failed = result.Trials.Where(t => t.Status == TrialStatus.Failed).ToArray();
        Assert.IsTrue(failed.Length > 0 && failed.Length < 18);
        Assert.IsTrue(failed.All(t => t.Configuration.Normalization == RecurrentNormalization.None && t.Error == "InvalidOperationException: training diverged"));
        Assert.AreEqual(failed.Length, monitor.Failed.Count);
        Assert.AreEqual(18 - failed.Length, monitor.Completed.Count);
        Assert.IsNotNull(result.Best);
        Assert.AreNotEqual(RecurrentNormalization.None, result.Best.Configuration.Normalization);
    }

    [TestMethod]
    public async Task AMissingMetricFailsTheTrialNamingTheFix()
    {
        var result = await new QuantizationExperiment()
            .SetObjective(SweepObjective.MaximizeAccuracy)
            .SetEpochs(1)
            .SetMaxModelToExplore(2)
            .SetTrialRunner((c, _) => SyntheticObjective.Report(c))
            .RunAsync();
        Assert.IsTrue(result.Trials.All(t => t.Status == TrialStatus.Failed));
        StringAssert.Contains(result.Trials[0].Error, "'accuracy'");
        StringAssert.Contains(result.Trials[0].Error, "SetObjective");
        Assert.IsNull(result.Best);
    }

    [TestMethod]
    public async Task CustomObjectiveAndProgressMonitor()
    {
        var reported = new List<TrialResult>();
        var result = await new QuantizationExperiment()
            .SetTuner(new RandomTuner())
            .SetObjective(SweepObjective.Custom("score", maximize: false, r => r.Metrics["perplexity"] + r.PackedBytes / 1e4))
            .SetEpochs(1)
            .SetMaxModelToExplore(6)
            .SetMonitor(new SynchronousProgress<TrialResult>(reported.Add))
            .SetTrialRunner((c, _) => SyntheticObjective.Report(c))
            .RunAsync();
        Assert.AreEqual(6, reported.Count);
        foreach (var t in result.Trials)
            Assert.AreEqual(SyntheticObjective.Loss(t.Configuration) + 1 + t.PackedBytes / 1e4, t.Metric, 1e-9);
        StringAssert.StartsWith(result.ToCsv(), "id,bracket,status,score,");
    }

    [TestMethod]
    public async Task MisuseGetsClearErrors()
    {
        var noRunner = Assert.ThrowsExactly<InvalidOperationException>(() => new QuantizationExperiment().SetMaxModelToExplore(1).RunAsync());
        StringAssert.Contains(noRunner.Message, "SetTrialRunner");
        var noBudget = Assert.ThrowsExactly<InvalidOperationException>(() => new QuantizationExperiment().SetTrialRunner((c, _) => SyntheticObjective.Report(c)).RunAsync());
        StringAssert.Contains(noBudget.Message, "SetMaxModelToExplore");

        var stateFile = SyntheticObjective.TempFile("state.json");
        await new QuantizationExperiment(seed: 1).SetEpochs(1).SetMaxModelToExplore(1).SetStateFile(stateFile)
            .SetTrialRunner((c, _) => SyntheticObjective.Report(c)).RunAsync();
        var seed = await Assert.ThrowsExactlyAsync<InvalidOperationException>(() => new QuantizationExperiment(seed: 2).SetEpochs(1).SetMaxModelToExplore(2)
            .SetStateFile(stateFile).SetTrialRunner((c, _) => SyntheticObjective.Report(c)).RunAsync());
        StringAssert.Contains(seed.Message, "seed 1");
        var epochs = await Assert.ThrowsExactlyAsync<InvalidOperationException>(() => new QuantizationExperiment(seed: 1).SetEpochs(2).SetMaxModelToExplore(2)
            .SetStateFile(stateFile).SetTrialRunner((c, _) => SyntheticObjective.Report(c)).RunAsync());
        StringAssert.Contains(epochs.Message, "SetEpochs");

        File.WriteAllText(stateFile, "{ not json");
        var damaged = await Assert.ThrowsExactlyAsync<InvalidDataException>(() => new QuantizationExperiment(seed: 1).SetEpochs(1).SetMaxModelToExplore(2)
            .SetStateFile(stateFile).SetTrialRunner((c, _) => SyntheticObjective.Report(c)).RunAsync());
        StringAssert.Contains(damaged.Message, "damaged");
    }
}
