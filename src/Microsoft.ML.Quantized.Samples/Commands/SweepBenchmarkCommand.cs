using System.CommandLine;
using System.Globalization;
using System.Text;
using Microsoft.ML.Quantized.Sweep;
using Spectre.Console;

namespace Microsoft.ML.Quantized.Samples.Commands;

/// <summary>
/// How much of a full grid's compute the sample-efficient tuners need. Step 1 trains every configuration of a small,
/// discrete space (Moby Dick character LMs) for the full epoch budget, with the grid tuner, and keeps each trial's
/// per-epoch validation curve (resumable: the grid's state file and models are kept). Step 2 replays sweeps over
/// that table (a tabular benchmark: a trial at e epochs reports the best validation BPC of the grid model's first e
/// epochs, which is what a checkpoint-resumed trial reports; the tests check that resuming equals training straight
/// through) for several tuner seeds: TPE and random search with successive halving, and TPE on full budgets. Compute
/// is counted in training epochs until a full-budget trial first comes within the tolerance of the grid's best.
/// Writes the <c>sweep-tuners</c> section of docs/benchmarks.md.
/// </summary>
internal static class SweepBenchmarkCommand
{
    private const string SectionStart = "<!-- bench:sweep-tuners -->";
    private const string SectionEnd = "<!-- /bench:sweep-tuners -->";

    public static System.CommandLine.Command Create()
    {
        var seeds = new Option<int>("--seeds") { Description = "Tuner seeds replayed per strategy.", DefaultValueFactory = _ => 10 };
        var maxEpochs = new Option<int>("--max-epochs") { Description = "Full epoch budget (successive halving rungs 1, 3, 9 for 9).", DefaultValueFactory = _ => 9 };
        var steps = new Option<int>("--steps-per-epoch") { Description = "Training steps per epoch (batch 32 x 50 characters).", DefaultValueFactory = _ => 20 };
        var trainChars = new Option<int>("--train-chars") { Description = "Characters of Moby Dick to train on.", DefaultValueFactory = _ => 200_000 };
        var tolerance = new Option<double>("--tolerance") { Description = "Relative distance to the grid's best BPC that counts as found.", DefaultValueFactory = _ => 0.01 };
        var state = new Option<FileInfo>("--state") { Description = "The grid's sweep state (resumed when it exists).", DefaultValueFactory = _ => new FileInfo("artifacts/sweep-bench/grid.json") };
        var output = new Option<FileInfo>("--out") { Description = "Markdown file to write (its sweep-tuners section is replaced).", DefaultValueFactory = _ => new FileInfo("docs/benchmarks.md") };
        var command = new System.CommandLine.Command("sweep-bench", "Grid vs TPE/random with successive halving: compute needed to come within 1% of the grid's best (Moby Dick char LM).")
        {
            seeds, maxEpochs, steps, trainChars, tolerance, state, output,
        };
        command.SetAction((parse, token) => Run(parse.GetValue(seeds), parse.GetValue(maxEpochs), parse.GetValue(steps), parse.GetValue(trainChars),
            parse.GetValue(tolerance), parse.GetValue(state)!, parse.GetValue(output)!, token));
        return command;
    }

    /// <summary>
    /// 48 configurations that all run the fused kernel (no activation quantizer, slope 1, no in-cell normalization):
    /// six weight quantizers x two cells x two hidden sizes x KURE off/on, at a fixed learning rate (a table needs a
    /// discrete space).
    /// </summary>
    private static QuantizationSearchSpace Space() => new()
    {
        WeightQuantizers =
        [
            QuantizerChoice.Float, QuantizerChoice.BinaryConnect, QuantizerChoice.BinaryWeightNet, QuantizerChoice.TernaryWeightNet,
            QuantizerChoice.Alternating(2), QuantizerChoice.Uniform(4),
        ],
        ActivationQuantizers = [QuantizerChoice.Float],
        ActivationSlope = SearchRange.Fixed(1),
        Normalizations = [RecurrentNormalization.None],
        Cells = [RecurrentCellKind.Lstm, RecurrentCellKind.Gru],
        HiddenSizes = [32, 96],
        LearningRate = SearchRange.Fixed(6e-3),
        UseKure = [false, true],
    };

    /// <summary>A grid trial's curve: best validation BPC after each epoch, and its packed size.</summary>
    private sealed record Curve(double[] BestAfterEpoch, long PackedBytes);

    /// <summary>One replayed sweep: epochs trained in all, and each full-budget result with the epochs trained by then.</summary>
    private sealed record Replay(int TotalEpochs, IReadOnlyList<(int Epochs, double Metric)> FullBudgetResults)
    {
        /// <summary>Epochs trained when a full-budget trial first reached <paramref name="target"/> (null = never).</summary>
        public int? EpochsTo(double target) => FullBudgetResults.Where(r => r.Metric <= target).Select(r => (int?)r.Epochs).FirstOrDefault();
    }

    private static async Task<int> Run(int seeds, int maxEpochs, int steps, int trainChars, double tolerance, FileInfo state, FileInfo output, CancellationToken cancellationToken)
    {
        if (seeds < 1) throw new ArgumentException("--seeds must be at least 1.");
        if (!(tolerance >= 0)) throw new ArgumentException("--tolerance must be zero or positive (0.01 = within 1%).");
        var task = SweepCommand.MobyDick(trainChars, steps);
        var space = Space();
        long gridSize = space.GridSize(1);
        AnsiConsole.MarkupLine($"[bold]Sweep benchmark[/]: {Markup.Escape(task.Description)}; grid of {gridSize} configurations x {maxEpochs} epochs. State: [blue]{Markup.Escape(state.FullName)}[/]{(state.Exists ? " (resuming)" : "")}.");

        var grid = await new QuantizationExperiment(seed: 1)
            .SetSearchSpace(space)
            .SetTuner(new GridTuner(pointsPerRange: 1))
            .SetTrialRunner(task.Runner)
            .SetObjective(task.Objective)
            .SetEpochs(maxEpochs)
            .SetMaxModelToExplore((int)gridSize)
            .SetStateFile(state.FullName)
            .SetMonitor(new Progress<TrialResult>(t => AnsiConsole.MarkupLine($"grid #{t.Id} {t.Status} BPC {t.Metric.ToString("F3", CultureInfo.InvariantCulture)} {Markup.Escape(t.Configuration.Key)}")))
            .RunAsync(cancellationToken);
        var gridMinutes = grid.Trials.Sum(t => t.Duration.TotalMinutes);
        var curves = grid.Trials.Where(t => t.Status == TrialStatus.Completed && t.ModelPath is not null)
            .ToDictionary(t => t.Configuration.Key, t => ReadCurve(t.ModelPath!, maxEpochs));
        if (grid.Trials.FirstOrDefault(t => t.Status == TrialStatus.Failed) is { } failed)
            throw new InvalidOperationException($"Grid trial {failed.Id} ({failed.Configuration.Key}) failed: {failed.Error}. The table needs every configuration: " +
                $"delete '{state.FullName}' and its '.trials' folder and run again (failed trials are final in a sweep state).");
        if (curves.Count < gridSize)
            throw new InvalidOperationException($"The grid finished {curves.Count} of {gridSize} configurations ({grid.StopReason}); run the command again to resume it.");
        double best = curves.Values.Min(c => c.BestAfterEpoch[^1]);
        double target = best * (1 + tolerance);
        int withinTolerance = curves.Values.Count(c => c.BestAfterEpoch[^1] <= target);
        int gridEpochs = (int)gridSize * maxEpochs;
        var bestKey = curves.First(c => c.Value.BestAfterEpoch[^1] == best).Key;
        AnsiConsole.MarkupLine($"Grid best: BPC {best:F4} ({Markup.Escape(bestKey)}); target {target:F4}; grid compute {gridEpochs} epochs.");

        var strategies = new (string Name, Func<ISweepTuner> Tuner, bool Halving)[]
        {
            ("TPE + successive halving", () => new TreeParzenTuner(startupTrials: 9), true),
            ("random + successive halving", () => new RandomTuner(), true),
            ("TPE, full budget per trial", () => new TreeParzenTuner(startupTrials: 9), false),
        };
        var results = new List<(string Name, Replay[] Runs)>();
        foreach (var (name, tuner, halving) in strategies)
        {
            var runs = new Replay[seeds];
            for (int seed = 1; seed <= seeds; seed++)
                runs[seed - 1] = await ReplayAsync(space, task.Objective, tuner(), halving, maxEpochs, (int)gridSize, curves, seed, cancellationToken);
            results.Add((name, runs));
            AnsiConsole.MarkupLine($"{Markup.Escape(name)}: {string.Join(", ", runs.Select(r => r.EpochsTo(target)?.ToString(CultureInfo.InvariantCulture) ?? "-"))} epochs to target");
        }

        var markdown = Render(task.Description, space, gridSize, maxEpochs, gridEpochs, gridMinutes, best, bestKey, tolerance, withinTolerance, seeds, results);
        BenchmarkCommand.WriteSection(output, markdown, SectionStart, SectionEnd);
        AnsiConsole.MarkupLine($"Wrote [blue]{Markup.Escape(output.FullName)}[/].");
        return 0;
    }

    private static Curve ReadCurve(string modelPath, int maxEpochs)
    {
        using var model = QuantizedLanguageModel.Load(modelPath);
        var losses = model.History.Select(e => e.ValidationLoss).ToArray();
        if (losses.Length < maxEpochs)
            throw new InvalidOperationException($"'{modelPath}' holds {losses.Length} epochs of history, the benchmark needs {maxEpochs}; delete the grid state (--state) and run again.");
        var curve = new double[maxEpochs];
        double running = double.PositiveInfinity;
        for (int e = 0; e < maxEpochs; e++)
        {
            if (double.IsFinite(losses[e])) running = Math.Min(running, losses[e]);
            curve[e] = running / Math.Log(2);
        }
        return new Curve(curve, model.SizeReport().PackedBytes);
    }

    private static async Task<Replay> ReplayAsync(QuantizationSearchSpace space, SweepObjective objective, ISweepTuner tuner, bool halving, int maxEpochs,
        int maxTrials, IReadOnlyDictionary<string, Curve> curves, int seed, CancellationToken cancellationToken)
    {
        int epochs = 0;
        var fullBudget = new List<(int, double)>();
        var experiment = new QuantizationExperiment(seed)
            .SetSearchSpace(space)
            .SetTuner(tuner)
            .SetObjective(objective)
            .SetMaxModelToExplore(maxTrials)
            .SetTrialRunner((context, _) =>
            {
                var curve = curves[context.Configuration.Key];
                double metric = curve.BestAfterEpoch[context.Epochs - 1];
                epochs += context.Epochs - context.PreviousEpochs;
                if (context.Epochs == maxEpochs) fullBudget.Add((epochs, metric));
                return new TrialReport(LanguageModelTrialRunner.BitsPerToken, metric, curve.PackedBytes);
            });
        experiment = halving ? experiment.SetSuccessiveHalving(1, maxEpochs) : experiment.SetEpochs(maxEpochs);
        await experiment.RunAsync(cancellationToken);
        return new Replay(epochs, fullBudget);
    }

    private static string Render(string description, QuantizationSearchSpace space, long gridSize, int maxEpochs, int gridEpochs, double gridMinutes,
        double best, string bestKey, double tolerance, int withinTolerance, int seeds, List<(string Name, Replay[] Runs)> results)
    {
        var ci = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.AppendLine("## Sweep tuners: compute to reach the grid's best");
        sb.AppendLine();
        sb.AppendLine(ci, $"`dotnet run --project src/Microsoft.ML.Quantized.Samples -c Release -- sweep-bench` on {BenchmarkCommand.MachineDescription()}, {DateTime.UtcNow:yyyy-MM-dd}. " +
                          $"Task: {description}. Space: {string.Join(", ", space.WeightQuantizers.Select(q => q.Name))} weights x LSTM/GRU x hidden {string.Join("/", space.HiddenSizes)} x KURE off/on, " +
                          $"learning rate {space.LearningRate.Min.ToString("G3", ci)}, fused kernel: {gridSize} configurations. The grid trained each for {maxEpochs} epochs ({gridEpochs} epochs, {gridMinutes:0.0} min incl. validation); " +
                          $"best validation BPC {best:F4} (`{bestKey}`). Target: a full-budget trial within {tolerance:P0} of it (BPC <= {best * (1 + tolerance):F4}), " +
                          $"which {withinTolerance} of the {gridSize} configurations reach; the stricter target is the grid's best configuration itself.");
        sb.AppendLine();
        sb.AppendLine(ci, $"Sweeps replayed on the grid's per-epoch validation curves (a trial at e epochs reports the grid model's best BPC of its first e epochs, exactly what a checkpoint-resumed trial reports), {seeds} tuner seeds each, trial budget {gridSize}. Compute = training epochs until the target is first met, as a share of the grid's {gridEpochs}:");
        sb.AppendLine();
        sb.AppendLine(ci, $"| strategy | within {tolerance:P0}: reached | median compute | worst compute | the best itself: reached | median compute | worst compute | mean epochs per sweep (whole budget) |");
        sb.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var (name, runs) in results)
            sb.AppendLine(ci, $"| {name} | {Shares(runs, best * (1 + tolerance), gridEpochs)} | {Shares(runs, best, gridEpochs)} | {runs.Average(r => r.TotalEpochs):0} |");
        sb.AppendLine();
        sb.AppendLine("The training seed is the grid's (1) for every replay; seeds vary the tuner only. Successive halving: brackets of 9 at 1 epoch, the best third to 3, the best to 9. " +
                      "TPE's first 9 proposals are random (its startup trials), so with successive halving it matches random search whenever the first bracket already holds a target configuration.");
        return sb.ToString();
    }

    /// <summary>"reached | median | worst" compute shares for one target; median and worst over the seeds that reached it.</summary>
    private static string Shares(Replay[] runs, double target, int gridEpochs)
    {
        var ci = CultureInfo.InvariantCulture;
        var hits = runs.Select(r => r.EpochsTo(target)).Where(e => e is not null).Select(e => (double)e!.Value / gridEpochs).Order().ToArray();
        if (hits.Length == 0) return $"0/{runs.Length} | - | -";
        return $"{hits.Length}/{runs.Length} | {Median(hits).ToString("P0", ci)} | {hits[^1].ToString("P0", ci)}{(hits.Length < runs.Length ? " (of those reaching it)" : "")}";
    }

    private static double Median(double[] sorted) => sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
}
