using System.Diagnostics;
using System.Globalization;
using System.Text;
using Microsoft.ML.Quantized.Orleans;
using Microsoft.ML.Quantized.Samples.Cluster;
using Microsoft.ML.Quantized.Sweep;
using Spectre.Console;

namespace Microsoft.ML.Quantized.Samples.Commands;

/// <summary>
/// Issue 16's benchmark: the same sweep (Moby Dick character LMs, random tuner, a fixed number of trials and epochs) run
/// three ways on this machine: in one process with two trials at a time; on two local worker silos (separate processes, one
/// libtorch thread each) through <see cref="OrleansTrialRunner"/>; and on two silos with the second one killed part-way.
/// Reports the wall times, whether every trial's result equals the one-process run's, the dispatch overhead per trial
/// (call time minus training time on the worker) and what the kill made the sweep redo. Writes the <c>sweep-cluster</c>
/// section of docs/benchmarks.md.
/// </summary>
internal static class SweepClusterBenchmarkCommand
{
    private const string SectionStart = "<!-- bench:sweep-cluster -->";
    private const string SectionEnd = "<!-- /bench:sweep-cluster -->";

    public static System.CommandLine.Command Create()
    {
        var trials = new System.CommandLine.Option<int>("--trials") { Description = "Trials of the sweep.", DefaultValueFactory = _ => 12 };
        var epochs = new System.CommandLine.Option<int>("--epochs") { Description = "Epochs per trial (no successive halving).", DefaultValueFactory = _ => 2 };
        var trainCount = new System.CommandLine.Option<int>("--train-count") { Description = "Training characters of Moby Dick.", DefaultValueFactory = _ => 200_000 };
        var steps = new System.CommandLine.Option<int>("--steps-per-epoch") { Description = "Training steps per epoch (batch 32 x 50 characters).", DefaultValueFactory = _ => 20 };
        var killAt = new System.CommandLine.Option<double>("--kill-at")
        {
            Description = "When to kill worker 1 in the third run, as a fraction of the two-silo run's wall time.",
            DefaultValueFactory = _ => 0.4,
        };
        var output = new System.CommandLine.Option<FileInfo>("--out") { Description = "Markdown file whose sweep-cluster section is replaced.", DefaultValueFactory = _ => new FileInfo("docs/benchmarks.md") };
        var command = new System.CommandLine.Command("sweep-cluster-bench", "The same sweep in one process, on 2 local Orleans worker silos, and on 2 silos with one killed mid-sweep.")
        {
            trials, epochs, trainCount, steps, killAt, output,
        };
        command.SetAction(async (parse, token) =>
        {
            var settings = new SweepCommand.SweepTaskSettings("moby", new DirectoryInfo("data/mnist"), parse.GetValue(trainCount), 0, parse.GetValue(steps));
            return await Run(settings, parse.GetValue(trials), parse.GetValue(epochs), parse.GetValue(killAt), parse.GetValue(output)!, token);
        });
        return command;
    }

    private static async Task<int> Run(SweepCommand.SweepTaskSettings settings, int trials, int epochs, double killAt, FileInfo output, CancellationToken token)
    {
        if (trials < 2 || epochs < 1) throw new ArgumentException("--trials must be at least 2 and --epochs at least 1.");
        if (killAt is <= 0 or >= 1) throw new ArgumentException($"--kill-at must be in (0, 1); got {killAt}.");
        var load = BenchmarkCommand.LoadAverage();
        var task = settings.Load();
        string root = Path.Combine(Path.GetTempPath(), $"mlq-sweep-cluster-{Environment.ProcessId}");

        AnsiConsole.MarkupLine($"[bold]1 process[/], 2 trials at a time: {Markup.Escape(task.Description)}");
        var local = await Sweep(task, trials, epochs, Path.Combine(root, "local"), runner: null, token);

        AnsiConsole.MarkupLine("[bold]2 worker silos[/] (separate processes, 1 libtorch thread each)");
        var twoSilos = await OnCluster(settings, task, trials, epochs, Path.Combine(root, "cluster"), killAfter: null, token);

        var killAfter = TimeSpan.FromSeconds(twoSilos.Seconds * killAt);
        AnsiConsole.MarkupLine($"[bold]2 worker silos, worker 1 killed[/] after {killAfter.TotalSeconds:F0} s");
        var killed = await OnCluster(settings, task, trials, epochs, Path.Combine(root, "killed"), killAfter, token);

        var markdown = Render(local, twoSilos, killed, trials, epochs, killAt, task, load);
        BenchmarkCommand.WriteSection(output, markdown, SectionStart, SectionEnd);
        AnsiConsole.MarkupLine($"Written to [blue]{Markup.Escape(output.FullName)}[/].");
        try
        {
            Directory.Delete(root, recursive: true);
        }
        catch (IOException)
        {
        }
        return 0;
    }

    private sealed record SweepRun(SweepResult Result, double Seconds, IReadOnlyList<TrialDispatch> Dispatches, string? Killed);

    private static async Task<SweepRun> OnCluster(SweepCommand.SweepTaskSettings settings, SweepCommand.SweepTask task, int trials, int epochs, string folder,
        TimeSpan? killAfter, CancellationToken token)
    {
        await using var cluster = await LocalSiloProcesses.StartAsync(2, settings, token);
        var runner = new OrleansTrialRunner(cluster.Client, settings.Task);
        await runner.CheckWorkersAsync(token);
        string? killed = null;
        using var kill = killAfter is { } delay
            ? new Timer(_ =>
            {
                killed = cluster.Describe().ElementAt(1);
                cluster.Kill(1);
                AnsiConsole.MarkupLine($"[red]killed {Markup.Escape(killed)}[/]");
            }, null, delay, Timeout.InfiniteTimeSpan)
            : null;
        var run = await Sweep(task, trials, epochs, folder, runner, token);
        return run with { Dispatches = runner.Dispatches, Killed = killed };
    }

    private static async Task<SweepRun> Sweep(SweepCommand.SweepTask task, int trials, int epochs, string folder, OrleansTrialRunner? runner, CancellationToken token)
    {
        var experiment = new QuantizationExperiment(seed: 1)
            .SetSearchSpace(task.Space)
            .SetTuner(new RandomTuner())
            .SetTrialRunner(runner ?? task.Runner)
            .SetObjective(task.Objective)
            .SetEpochs(epochs)
            .SetMaxModelToExplore(trials)
            .SetParallelism(2)
            .SetStateFile(Path.Combine(folder, "state.json"));
        var clock = Stopwatch.StartNew();
        var result = await experiment.RunAsync(token);
        double seconds = clock.Elapsed.TotalSeconds;
        AnsiConsole.MarkupLine(string.Create(CultureInfo.InvariantCulture,
            $"  {result.Trials.Count(t => t.Status == TrialStatus.Completed)} of {result.Trials.Count} trials completed in {seconds:F1} s"));
        return new SweepRun(result, seconds, [], null);
    }

    private static string Key(TrialResult t) => string.Create(CultureInfo.InvariantCulture, $"{t.Id} {t.Status} {t.Metric:R} {t.PackedBytes} {t.Configuration.Key}");

    private static string Render(SweepRun local, SweepRun twoSilos, SweepRun killed, int trials, int epochs, double killAt, SweepCommand.SweepTask task, string? load)
    {
        var ci = CultureInfo.InvariantCulture;
        var reference = local.Result.Trials.Select(Key).ToArray();
        string Same(SweepRun run) => run.Result.Trials.Select(Key).SequenceEqual(reference)
            ? "all equal"
            : $"{run.Result.Trials.Select(Key).Zip(reference).Count(p => p.First != p.Second)} differ";
        string Overhead(SweepRun run)
        {
            var ok = run.Dispatches.Where(d => d.Error is null).Select(d => d.OverheadSeconds * 1000).OrderBy(x => x).ToArray();
            return ok.Length == 0 ? "-" : string.Create(ci, $"{ok.Average():F0} ms (median {ok[ok.Length / 2]:F0}, max {ok[^1]:F0})");
        }
        string Failures(SweepRun run)
        {
            int runner = run.Dispatches.Count(d => d.Error is not null && d.Error.StartsWith("TrialAttemptFailedException", StringComparison.Ordinal));
            return string.Create(ci, $"{runner} / {run.Dispatches.Count(d => d.Error is not null) - runner}");
        }
        string Silos(SweepRun run) => string.Join(" / ", run.Dispatches.Where(d => d.Error is null).GroupBy(d => d.Silo).Select(g => g.Count().ToString(ci)));

        var sb = new StringBuilder();
        sb.AppendLine("## Sweeps on an Orleans cluster (local worker silos)");
        sb.AppendLine();
        sb.AppendLine(string.Create(ci,
            $"The same sweep three ways: {task.Description}; random tuner (seed 1), {trials} trials of {epochs} epochs each (no successive halving), two trials at a time. " +
            $"**1 process**: `QuantizationExperiment` with its in-process runner, `SetParallelism(2)` (one libtorch thread per trial). **2 silos**: two worker silos, each a separate " +
            $"process of the samples' `worker` command with one libtorch thread, clustered on localhost; the experiment in this process sends each trial to a worker grain " +
            $"(`UseOrleans` / `OrleansTrialRunner`). **2 silos, one killed**: the same, with worker 1's process killed after {killAt:P0} of the 2-silo run's wall time; " +
            $"its trial's attempt fails and runs again on worker 0, resuming from the trial's last epoch checkpoint (the silos share this machine's disk). " +
            $"Dispatch overhead = the time from sending a trial to receiving its result on this process minus the runner's training time on the worker (messaging, placement, activation, serialization, the long poll's answer). " +
            $"{BenchmarkCommand.Provenance(load)}"));
        sb.AppendLine();
        sb.AppendLine("| run | wall time | trials completed | results vs 1 process | trials per silo | dispatch overhead per trial | failed attempts (runner / lost) |");
        sb.AppendLine("|---|---:|---:|---|---|---|---:|");
        foreach (var (name, run) in new[] { ("1 process", local), ("2 silos", twoSilos), ("2 silos, worker 1 killed", killed) })
        {
            bool cluster = !ReferenceEquals(run, local);
            sb.AppendLine(string.Create(ci,
                $"| {name} | {run.Seconds:F1} s | {run.Result.Trials.Count(t => t.Status == TrialStatus.Completed)} of {run.Result.Trials.Count} | {(cluster ? Same(run) : "(reference)")} | " +
                $"{(cluster ? Silos(run) : "-")} | {(cluster ? Overhead(run) : "-")} | {(cluster ? Failures(run) : "-")} |"));
        }
        sb.AppendLine();
        foreach (var trial in local.Result.Trials.Where(t => t.Status == TrialStatus.Failed))
            sb.AppendLine($"Trial {trial.Id} ({trial.Configuration.Key}) failed in the one-process run too: {trial.Error?.TrimEnd('.')}. The cluster runs tried it twice (its runner threw each time) and recorded it as failed, as the local run does.");
        sb.AppendLine();
        var lost = killed.Dispatches.Where(d => d.Error is not null && !d.Error.StartsWith("TrialAttemptFailedException", StringComparison.Ordinal)).ToList();
        sb.AppendLine(lost.Count == 0
            ? $"What the kill redid: nothing; no attempt was running on {killed.Killed ?? "worker 1"} when it was killed."
            : $"What the kill of {killed.Killed} redid: " + string.Join("; ", lost.Select(f =>
            {
                var rerun = killed.Dispatches.FirstOrDefault(d => d.TrialId == f.TrialId && d.Rung == f.Rung && d.Attempt > f.Attempt && d.Error is null);
                return string.Create(ci, $"trial {f.TrialId}'s attempt {f.Attempt} was lost after {f.CallSeconds:F1} s ({f.Error!.Split(':')[0]}) and ran again on {rerun?.Silo ?? "no silo"}") +
                       (rerun is null ? "" : string.Create(ci, $" in {rerun.RunSeconds:F1} s of training"));
            })) + ". Every other trial ran once; the sweep's state file records each finished trial, so none was repeated.");
        return sb.ToString();
    }
}
