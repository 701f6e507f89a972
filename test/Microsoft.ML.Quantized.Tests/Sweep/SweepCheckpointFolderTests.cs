using System.Text;
using Microsoft.ML.Quantized.Sweep;

namespace Microsoft.ML.Quantized.Tests.Sweep;

/// <summary>
/// Where a sweep's checkpoints and model files go, and what is left of them when it ends: its own temporary folder is
/// deleted (the Pareto-front models are kept in memory), a folder the user chose is kept.
/// </summary>
[TestClass]
public sealed class SweepCheckpointFolderTests
{
    /// <summary>A runner that writes a checkpoint and a "model" (the configuration's key) into the trial's folder.</summary>
    private static TrialReport WriteFiles(TrialContext context)
    {
        Directory.CreateDirectory(context.CheckpointDirectory);
        File.WriteAllText(Path.Combine(context.CheckpointDirectory, "checkpoint.bin"), "state");
        var model = Path.Combine(context.CheckpointDirectory, "model.bin");
        File.WriteAllText(model, context.Configuration.Key + "@" + context.Epochs);
        var synthetic = SyntheticObjective.Report(context);
        return new TrialReport(synthetic.Metrics, synthetic.PackedBytes) { ModelPath = model };
    }

    private static string ReadModel(TrialResult trial)
    {
        using var stream = trial.OpenModel()!;
        using var reader = new StreamReader(stream, Encoding.UTF8);
        return reader.ReadToEnd();
    }

    /// <summary>The sweep's checkpoint root: the parent of the trials' folders.</summary>
    private static string RootOf(RecordingMonitor monitor) => Path.GetDirectoryName(monitor.Running[0].CheckpointDirectory)!;

    [TestMethod]
    public async Task Without_a_state_file_the_temporary_folder_is_deleted_and_the_Pareto_front_models_are_kept_in_memory()
    {
        var monitor = new RecordingMonitor();
        bool filesDuringSweep = true;
        var result = await new QuantizationExperiment(seed: 2)
            .SetSearchSpace(SyntheticObjective.SmallSpace())
            .SetTuner(new RandomTuner())
            .SetSuccessiveHalving(minEpochs: 1, maxEpochs: 3)
            .SetMaxModelToExplore(9)
            .SetTrialRunner((context, _) => WriteFiles(context))
            .SetMonitor(new DelegateMonitor(monitor, t => filesDuringSweep &= t.ModelPath is { } p && File.Exists(p)))
            .RunAsync();

        Assert.IsTrue(filesDuringSweep, "the monitor sees each trial's model file while the sweep runs");
        var root = RootOf(monitor);
        StringAssert.StartsWith(root, Path.GetTempPath().TrimEnd(Path.DirectorySeparatorChar));
        Assert.IsFalse(Directory.Exists(root), $"{root} is left behind");
        Assert.IsGreaterThan(0, result.Trials.Count(t => t.Status == TrialStatus.Pruned), "successive halving pruned some trials");
        Assert.IsTrue(result.Trials.All(t => t.ModelPath is null), "no trial points into the deleted folder");
        Assert.IsTrue(result.Trials.SelectMany(t => t.Rungs).All(r => r.ModelPath is null));

        var front = result.ParetoFront.Select(t => t.Id).ToHashSet();
        Assert.Contains(result.Best!.Id, front);
        foreach (var trial in result.Trials)
        {
            if (front.Contains(trial.Id)) Assert.AreEqual(trial.Configuration.Key + "@" + trial.EpochsUsed, ReadModel(trial));
            else Assert.IsNull(trial.OpenModel(), $"trial #{trial.Id} is not on the front");
        }
        Assert.AreEqual(result.Best.Configuration.Key + "@3", ReadModel(result.Best));
        Assert.IsNotNull(result.BestUnderBytes(result.ParetoFront[0].PackedBytes)!.OpenModel());
    }

    [TestMethod]
    public async Task The_temporary_folder_is_deleted_when_the_sweep_is_cancelled_and_when_it_fails()
    {
        using var cancellation = new CancellationTokenSource();
        var monitor = new RecordingMonitor();
        var cancelled = await new QuantizationExperiment(seed: 2)
            .SetSearchSpace(SyntheticObjective.SmallSpace())
            .SetEpochs(1)
            .SetMaxModelToExplore(5)
            .SetMonitor(monitor)
            .SetTrialRunner((context, token) =>
            {
                var report = WriteFiles(context);
                if (context.TrialId == 1)
                {
                    cancellation.Cancel();
                    token.ThrowIfCancellationRequested();
                }
                return report;
            })
            .RunAsync(cancellation.Token);
        Assert.AreEqual(SweepStopReason.Cancelled, cancelled.StopReason);
        Assert.AreEqual(TrialStatus.Completed, cancelled.Trials[0].Status);
        Assert.AreEqual(TrialStatus.Stopped, cancelled.Trials[1].Status);
        Assert.IsNotNull(cancelled.Best!.OpenModel());
        Assert.IsFalse(Directory.Exists(RootOf(monitor)));

        var failing = new RecordingMonitor();
        var e = await Assert.ThrowsExactlyAsync<InvalidOperationException>(() => new QuantizationExperiment(seed: 2)
            .SetSearchSpace(SyntheticObjective.SmallSpace())
            .SetEpochs(1)
            .SetMaxModelToExplore(5)
            .SetMonitor(new DelegateMonitor(failing, _ => throw new InvalidOperationException("monitor broke")))
            .SetTrialRunner((context, _) => WriteFiles(context))
            .RunAsync());
        Assert.AreEqual("monitor broke", e.Message);
        Assert.IsFalse(Directory.Exists(RootOf(failing)));
    }

    [TestMethod]
    public async Task A_checkpoint_folder_or_state_file_keeps_every_trials_files_and_model_path()
    {
        var folder = SyntheticObjective.TempFile("trials");
        var state = SyntheticObjective.TempFile("sweep.json");
        try
        {
            foreach (var experiment in new[]
                     {
                         new QuantizationExperiment(seed: 2).SetCheckpointDirectory(folder),
                         new QuantizationExperiment(seed: 2).SetStateFile(state),
                     })
            {
                var result = await experiment
                    .SetSearchSpace(SyntheticObjective.SmallSpace())
                    .SetEpochs(1)
                    .SetMaxModelToExplore(3)
                    .SetTrialRunner((context, _) => WriteFiles(context))
                    .RunAsync();
                Assert.HasCount(3, result.Trials);
                foreach (var trial in result.Trials)
                {
                    Assert.IsTrue(File.Exists(trial.ModelPath), trial.ModelPath);
                    Assert.IsTrue(File.Exists(Path.Combine(Path.GetDirectoryName(trial.ModelPath)!, "checkpoint.bin")));
                    Assert.AreEqual(trial.Configuration.Key + "@1", ReadModel(trial));
                }
            }
            StringAssert.StartsWith(Directory.GetDirectories(state + ".trials").Single(d => d.EndsWith("trial-0000")), state + ".trials");
        }
        finally
        {
            Directory.Delete(Path.GetDirectoryName(folder)!, recursive: true);
            Directory.Delete(Path.GetDirectoryName(state)!, recursive: true);
        }
    }

    /// <summary>Records calls, and runs <paramref name="onCompleted"/> on each completed or pruned trial.</summary>
    private sealed class DelegateMonitor(RecordingMonitor inner, Action<TrialResult> onCompleted) : ISweepMonitor
    {
        public void ReportRunningTrial(TrialContext context) => inner.ReportRunningTrial(context);

        public void ReportCompletedTrial(TrialResult result)
        {
            inner.ReportCompletedTrial(result);
            onCompleted(result);
        }

        public void ReportFailedTrial(TrialResult result) => inner.ReportFailedTrial(result);
    }
}
