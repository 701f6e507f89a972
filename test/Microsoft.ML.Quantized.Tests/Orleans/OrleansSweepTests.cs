using Microsoft.Extensions.DependencyInjection;
using Microsoft.ML.Quantized.Orleans;
using Microsoft.ML.Quantized.Sweep;
using Microsoft.ML.Quantized.Tests.Sweep;
using Orleans.Configuration;
using Orleans.Runtime;
using Orleans.TestingHost;

namespace Microsoft.ML.Quantized.Tests.Orleans;

/// <summary>
/// Sweeps over a two-silo Orleans test cluster (in-process silos, Orleans' TestingHost): the same trials and metrics as
/// the sweep run locally; a silo killed while it trains a trial -> the trial is run again on the other silo and its result
/// equals the local one; a trial that fails on every attempt is recorded as failed and the sweep goes on; a workload the
/// workers do not offer is an error before any trial starts.
/// </summary>
[TestClass]
public sealed class OrleansSweepTests
{
    private const string Synthetic = "synthetic";
    private const string Killable = "killable";
    private const string Failing = "failing";
    private const string Slow = "slow";

    [TestMethod]
    public async Task A_sweep_over_two_silos_equals_the_same_sweep_run_locally()
    {
        var local = await Experiment().SetTrialRunner((c, _) => SyntheticObjective.Report(c)).RunAsync();

        await using var cluster = await StartClusterAsync();
        var experiment = await Experiment().UseOrleansAsync(cluster.Client, Synthetic);
        var distributed = await experiment.RunAsync();

        CollectionAssert.AreEqual(Summary(local), Summary(distributed));
        Assert.AreEqual(12, distributed.Trials.Count);
        Assert.IsTrue(distributed.Trials.All(t => t.Status == TrialStatus.Completed), string.Join("; ", distributed.Trials.Select(t => $"{t.Id} {t.Status}")));
    }

    [TestMethod]
    public async Task A_silo_killed_mid_trial_gets_the_trial_run_again_on_the_other_silo()
    {
        KillableRunner.Reset();
        var local = await Experiment().SetTrialRunner((c, _) => SyntheticObjective.Report(c)).RunAsync();

        await using var cluster = await StartClusterAsync();
        var runner = new OrleansTrialRunner(cluster.Client, Killable) { RetryDelay = TimeSpan.FromSeconds(2) };
        var sweep = Experiment().SetTrialRunner(runner).RunAsync();

        // The first trial blocks on its silo until that silo is killed.
        var victim = await KillableRunner.Blocked.Task.WaitAsync(TimeSpan.FromMinutes(2));
        var silo = cluster.Silos.Single(s => s.SiloAddress.ToString() == victim);
        await cluster.KillSiloAsync(silo);
        KillableRunner.Release.Set();

        var distributed = await sweep.WaitAsync(TimeSpan.FromMinutes(5));
        CollectionAssert.AreEqual(Summary(local), Summary(distributed), "every trial completes with its local result");
        var attempts = runner.Dispatches.Where(d => d.TrialId == KillableRunner.BlockedTrial).ToList();
        Assert.IsNotNull(attempts[0].Error, "the first attempt died with its silo");
        var done = attempts.Single(a => a.Error is null);
        Assert.AreNotEqual(victim, done.Silo, "the killed silo's trial ran again elsewhere");
        Assert.IsTrue(cluster.Silos.Any(s => s.SiloAddress.ToString() == done.Silo), $"{done.Silo} is a surviving silo");
        Assert.IsTrue(attempts.Where(a => a != done).All(a => a.Error is not null), string.Join("; ", attempts));
        Assert.IsTrue(runner.Dispatches.Where(d => d.Error is null).All(d => d.CallSeconds >= d.RunSeconds),
            "a call lasts at least as long as the training it waits for");
    }

    [TestMethod]
    public async Task A_trial_longer_than_the_grain_call_timeout_completes()
    {
        // Calls time out after 2 s on this cluster; the trial trains for 5 s.
        await using var cluster = await StartClusterAsync(responseTimeout: TimeSpan.FromSeconds(2));
        var runner = new OrleansTrialRunner(cluster.Client, Slow) { PollWait = TimeSpan.FromMilliseconds(500) };
        var context = Experiment().SetMaxModelToExplore(1).SetParallelism(1).SetTrialRunner(runner);
        var result = await context.RunAsync();

        Assert.AreEqual(TrialStatus.Completed, result.Trials.Single().Status, result.Trials.Single().Error);
        var dispatch = runner.Dispatches.Single();
        Assert.IsNull(dispatch.Error);
        Assert.IsGreaterThan(2.0, dispatch.RunSeconds, "the runner trained longer than a call may take");
    }

    [TestMethod]
    public async Task A_restarted_host_resumes_the_sweep_without_repeating_a_finished_trial()
    {
        var local = await Experiment().SetTrialRunner((c, _) => SyntheticObjective.Report(c)).RunAsync();
        var stateFile = SyntheticObjective.TempFile("state.json");
        await using var cluster = await StartClusterAsync();

        // The first host stops (its token is cancelled) once 5 trials have finished.
        using (var stop = new CancellationTokenSource())
        {
            var monitor = new StoppingMonitor(5, stop);
            var first = new OrleansTrialRunner(cluster.Client, Synthetic);
            await Experiment().SetTrialRunner(first).SetStateFile(stateFile).SetMonitor(monitor).RunAsync(stop.Token);
            Assert.IsTrue(stop.IsCancellationRequested);
        }
        var finished = SweepState(stateFile);

        var second = new OrleansTrialRunner(cluster.Client, Synthetic);
        var resumed = await Experiment().SetTrialRunner(second).SetStateFile(stateFile).RunAsync();
        CollectionAssert.AreEqual(Summary(local), Summary(resumed));
        var rerun = second.Dispatches.Select(d => d.TrialId).ToHashSet();
        Assert.IsGreaterThanOrEqualTo(5, finished.Count, "the first host finished at least 5 trials");
        Assert.IsFalse(finished.Overlaps(rerun), $"finished trials {string.Join(",", finished)} were not run again ({string.Join(",", rerun)})");
        Assert.AreEqual(12, finished.Count + rerun.Count);
    }

    [TestMethod]
    public async Task A_trial_failing_on_every_attempt_is_recorded_as_failed_and_the_sweep_goes_on()
    {
        FailingRunner.Attempts.Clear();
        await using var cluster = await StartClusterAsync();
        var result = await (await Experiment().UseOrleansAsync(cluster.Client, Failing)).RunAsync();

        var failed = result.Trials.Single(t => t.Status == TrialStatus.Failed);
        Assert.AreEqual(FailingRunner.FailingTrial, failed.Id);
        Assert.AreEqual(OrleansTrialRunner.DefaultMaxAttempts, FailingRunner.Attempts[(FailingRunner.FailingTrial, 0)], "tried twice, then recorded");
        Assert.AreEqual(11, result.Trials.Count(t => t.Status == TrialStatus.Completed));
    }

    [TestMethod]
    public async Task A_workload_the_workers_do_not_offer_is_an_error_before_any_trial()
    {
        await using var cluster = await StartClusterAsync();
        var e = await Assert.ThrowsExactlyAsync<InvalidOperationException>(() => Experiment().UseOrleansAsync(cluster.Client, "brown-word-lm"));
        StringAssert.Contains(e.Message, "'brown-word-lm'");
        StringAssert.Contains(e.Message, $"'{Synthetic}'");
    }

    [TestMethod]
    public void A_workload_whose_data_a_silo_cannot_read_stops_that_silo_before_it_takes_a_trial()
    {
        var workloads = new SweepWorkloads().Add("brown", _ => throw new DirectoryNotFoundException("Could not find a part of the path '/data/brown'."));
        using var services = new ServiceCollection().BuildServiceProvider();
        var e = Assert.ThrowsExactly<InvalidOperationException>(() => workloads.CreateRunners(services));
        StringAssert.Contains(e.Message, "'brown'");
        StringAssert.Contains(e.Message, "/data/brown");
    }

    /// <summary>Ids of the trials the state file records as finished.</summary>
    private static HashSet<int> SweepState(string path) =>
        Microsoft.ML.Quantized.Sweep.SweepState.Load(path)!.Trials.Where(t => t.Status is not null).Select(t => t.Id).ToHashSet();

    /// <summary>Cancels the sweep once <paramref name="after"/> trials have finished.</summary>
    private sealed class StoppingMonitor(int after, CancellationTokenSource stop) : ISweepMonitor
    {
        private int _finished;

        public void ReportRunningTrial(TrialContext context) { }

        public void ReportCompletedTrial(TrialResult result)
        {
            if (Interlocked.Increment(ref _finished) >= after) stop.Cancel();
        }

        public void ReportFailedTrial(TrialResult result) => ReportCompletedTrial(result);
    }

    private static QuantizationExperiment Experiment() =>
        new QuantizationExperiment(seed: 5)
            .SetSearchSpace(SyntheticObjective.SmallSpace())
            .SetTuner(new RandomTuner())
            .SetEpochs(2)
            .SetMaxModelToExplore(12)
            .SetParallelism(2);

    private static string[] Summary(SweepResult result) =>
        result.Trials.OrderBy(t => t.Id).Select(t => $"{t.Id} {t.Status} {t.Metric:R} {t.PackedBytes} {t.EpochsUsed} {t.Configuration.Key}").ToArray();

    private static async Task<TestCluster> StartClusterAsync(TimeSpan? responseTimeout = null)
    {
        var builder = new TestClusterBuilder(2);
        builder.AddSiloBuilderConfigurator<WorkerSilo>();
        if (responseTimeout is { } timeout)
        {
            builder.Properties[nameof(ShortTimeouts)] = timeout.ToString();
            builder.AddSiloBuilderConfigurator<ShortTimeouts>();
            builder.AddClientBuilderConfigurator<ShortTimeouts>();
        }
        var cluster = builder.Build();
        await cluster.DeployAsync();
        return cluster;
    }

    /// <summary>Grain calls time out after the builder property's time span.</summary>
    private sealed class ShortTimeouts : ISiloConfigurator, IHostConfigurator, IClientBuilderConfigurator
    {
        private static TimeSpan Timeout(Microsoft.Extensions.Configuration.IConfiguration configuration) => TimeSpan.Parse(configuration[nameof(ShortTimeouts)]!);

        public void Configure(ISiloBuilder siloBuilder) =>
            siloBuilder.Configure<SiloMessagingOptions>(o => o.ResponseTimeout = Timeout(siloBuilder.Configuration));

        public void Configure(Microsoft.Extensions.Hosting.IHostBuilder hostBuilder) { }

        public void Configure(Microsoft.Extensions.Configuration.IConfiguration configuration, IClientBuilder clientBuilder) =>
            clientBuilder.Configure<ClientMessagingOptions>(o => o.ResponseTimeout = Timeout(configuration));
    }

    private sealed class WorkerSilo : ISiloConfigurator
    {
        public void Configure(ISiloBuilder siloBuilder) => siloBuilder.AddQuantizedSweepWorker(workloads => workloads
            .Add(Synthetic, _ => new SyntheticRunner())
            .Add(Killable, services => new KillableRunner(services.GetRequiredService<ILocalSiloDetails>().SiloAddress.ToString()))
            .Add(Failing, _ => new FailingRunner())
            .Add(Slow, _ => new SlowRunner()));
    }

    private sealed class SyntheticRunner : ISweepTrialRunner
    {
        public TrialReport Run(TrialContext context, CancellationToken cancellationToken) => SyntheticObjective.Report(context);
    }

    /// <summary>Blocks the first attempt at trial 0 until the test has killed its silo; every other run reports as the local runner does.</summary>
    private sealed class KillableRunner(string silo) : ISweepTrialRunner
    {
        public const int BlockedTrial = 0;
        public static TaskCompletionSource<string> Blocked { get; private set; } = new();
        public static ManualResetEventSlim Release { get; private set; } = new();
        private static int _blocked;

        public static void Reset()
        {
            Blocked = new(TaskCreationOptions.RunContinuationsAsynchronously);
            Release = new();
            _blocked = 0;
        }

        public TrialReport Run(TrialContext context, CancellationToken cancellationToken)
        {
            if (context.TrialId == BlockedTrial && Interlocked.Exchange(ref _blocked, 1) == 0)
            {
                Blocked.SetResult(silo);
                Release.Wait(cancellationToken);
                throw new InvalidOperationException("This silo was killed; its answer must not count.");
            }
            return SyntheticObjective.Report(context);
        }
    }

    /// <summary>Trains for 5 seconds, then reports as the local runner does.</summary>
    private sealed class SlowRunner : ISweepTrialRunner
    {
        public TrialReport Run(TrialContext context, CancellationToken cancellationToken)
        {
            Task.Delay(TimeSpan.FromSeconds(5), cancellationToken).GetAwaiter().GetResult();
            return SyntheticObjective.Report(context);
        }
    }

    /// <summary>Fails every attempt at trial 3; counts attempts per trial and rung.</summary>
    private sealed class FailingRunner : ISweepTrialRunner
    {
        public const int FailingTrial = 3;
        public static System.Collections.Concurrent.ConcurrentDictionary<(int, int), int> Attempts { get; } = new();

        public TrialReport Run(TrialContext context, CancellationToken cancellationToken)
        {
            Attempts.AddOrUpdate((context.TrialId, context.Rung), 1, (_, n) => n + 1);
            if (context.TrialId == FailingTrial) throw new InvalidOperationException("diverged");
            return SyntheticObjective.Report(context);
        }
    }
}
