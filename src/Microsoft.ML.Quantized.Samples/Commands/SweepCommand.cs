using System.CommandLine;
using System.Globalization;
using Microsoft.ML.Quantized.Orleans;
using Microsoft.ML.Quantized.Samples.Cluster;
using Microsoft.ML.Quantized.Sweep;
using Spectre.Console;

namespace Microsoft.ML.Quantized.Samples.Commands;

/// <summary>
/// Sweeps quantized recurrent configurations: which weight quantizer, bit width, activation quantizer and slope, cell,
/// normalization, hidden size, learning rate and KURE setting give the best metric for their packed size. Two tasks:
/// <c>smnist</c> (default) classifies a subset of sequential MNIST (28 steps of 28 pixels; validation accuracy),
/// <c>moby</c> trains character LMs on a slice of the embedded Moby Dick (validation bits per character). TPE with
/// successive halving over epochs (1, 3, 9) within a time budget (default 10 minutes); prints the Pareto front and
/// writes a PNG plot of the metric against packed size. The sweep state is saved after every trial: run the command
/// again to resume a killed sweep (<c>--fresh</c> starts over).
/// </summary>
internal static class SweepCommand
{
    public static System.CommandLine.Command Create()
    {
        var (task, data, trainCount, validCount, steps) = TaskOptions();
        var minutes = new Option<double>("--minutes") { Description = "Time budget of the sweep in minutes.", DefaultValueFactory = _ => 10 };
        var trials = new Option<int>("--trials") { Description = "Most configurations to try (brackets of 9 with successive halving).", DefaultValueFactory = _ => 63 };
        var tuner = new Option<string>("--tuner") { Description = "tpe, random or grid.", DefaultValueFactory = _ => "tpe" };
        var maxEpochs = new Option<int>("--max-epochs") { Description = "Full epoch budget (successive halving rungs 1, 3, 9 for 9).", DefaultValueFactory = _ => 9 };
        var underKb = new Option<double>("--under-kb") { Description = "Also report the best model under this packed size (KB).", DefaultValueFactory = _ => 20 };
        var parallelism = new Option<int>("--parallelism") { Description = "Trials at the same time (default 1, or the number of --workers).", DefaultValueFactory = _ => 0 };
        var workers = new Option<int>("--workers")
        {
            Description = "Train the trials on N local Orleans worker silos, each a separate process of this program (`worker` command, one libtorch thread each), instead of in this process.",
            DefaultValueFactory = _ => 0,
        };
        var seed = new Option<int>("--seed") { Description = "Random seed (tuner and training).", DefaultValueFactory = _ => 1 };
        var state = new Option<FileInfo?>("--state") { Description = "Sweep state file, resumed when it exists (default artifacts/sweep/TASK.json)." };
        var fresh = new Option<bool>("--fresh") { Description = "Delete the state file and the trials' checkpoints first." };
        var plot = new Option<FileInfo?>("--plot") { Description = "PNG plot of the metric against packed size (default docs/sweep-TASK.png)." };
        var command = new System.CommandLine.Command("sweep", "Sweep quantized LSTM/GRU configurations (sequential MNIST or Moby Dick): Pareto front of the metric vs packed size.")
        {
            task, minutes, trials, tuner, maxEpochs, data, trainCount, validCount, steps, underKb, parallelism, workers, seed, state, fresh, plot,
        };
        command.SetAction((parse, token) =>
        {
            var settings = new SweepTaskSettings(parse.GetValue(task)!.ToLowerInvariant(), parse.GetValue(data)!, parse.GetValue(trainCount), parse.GetValue(validCount), parse.GetValue(steps));
            return Run(settings, parse.GetValue(minutes), parse.GetValue(trials), parse.GetValue(tuner)!, parse.GetValue(maxEpochs), parse.GetValue(underKb),
                parse.GetValue(parallelism), parse.GetValue(workers), parse.GetValue(seed), parse.GetValue(state) ?? new FileInfo($"artifacts/sweep/{settings.Task}.json"),
                parse.GetValue(fresh), parse.GetValue(plot) ?? new FileInfo($"docs/sweep-{settings.Task}.png"), token);
        });
        return command;
    }

    /// <summary>The options that choose a sweep's task and its data, shared by <c>sweep</c> and <c>worker</c>.</summary>
    internal static (Option<string> Task, Option<DirectoryInfo> Data, Option<int> TrainCount, Option<int> ValidCount, Option<int> Steps) TaskOptions() => (
        new Option<string>("--task") { Description = "smnist (sequential MNIST subset; needs build/fetch-data.sh --only mnist) or moby (embedded Moby Dick character LM).", DefaultValueFactory = _ => "smnist" },
        new Option<DirectoryInfo>("--data") { Description = "smnist: folder with the MNIST IDX files.", DefaultValueFactory = _ => new DirectoryInfo("data/mnist") },
        new Option<int>("--train-count") { Description = "smnist: training images (the first N of the training file; default 3,000); moby: training characters (default 200,000).", DefaultValueFactory = _ => 0 },
        new Option<int>("--valid-count") { Description = "smnist: validation images (after the training ones in the training file).", DefaultValueFactory = _ => 500 },
        new Option<int>("--steps-per-epoch") { Description = "moby: training steps per epoch (batch 32 x 50 characters).", DefaultValueFactory = _ => 20 });

    /// <summary>A sweep's task and data as its options give them; <see cref="Arguments"/> passes them on to a worker process.</summary>
    internal sealed record SweepTaskSettings(string Task, DirectoryInfo Data, int TrainCount, int ValidCount, int Steps)
    {
        /// <summary>The task, with its data read (a worker reads it itself, from the same path).</summary>
        public SweepTask Load() => Task switch
        {
            "smnist" => SequentialMnist(Data, TrainCount > 0 ? TrainCount : 3_000, ValidCount),
            "moby" => MobyDick(TrainCount > 0 ? TrainCount : 200_000, Steps),
            _ => throw new ArgumentException($"--task '{Task}': use smnist or moby."),
        };

        /// <summary>The command-line options that give the same settings.</summary>
        public string[] Arguments() =>
        [
            "--task", Task, "--data", Data.FullName, "--train-count", TrainCount.ToString(CultureInfo.InvariantCulture),
            "--valid-count", ValidCount.ToString(CultureInfo.InvariantCulture), "--steps-per-epoch", Steps.ToString(CultureInfo.InvariantCulture),
        ];
    }

    /// <summary>What a sweep trains and how its metric reads.</summary>
    /// <param name="Description">One line on the data, for the console.</param>
    /// <param name="Title">The plot's title prefix.</param>
    /// <param name="MetricLabel">The metric's short name in tables ("BPC", "accuracy").</param>
    internal sealed record SweepTask(string Description, string Title, string MetricLabel, ISweepTrialRunner Runner, SweepObjective Objective, QuantizationSearchSpace Space);

    /// <summary>
    /// The weight quantizers both tasks search: a float baseline, 1-bit, ternary, alternating 2/3-bit and uniform 4-bit;
    /// HitNet's ternary activations and slopes; three normalizations; both cells; KURE off and on.
    /// </summary>
    private static QuantizationSearchSpace SearchSpace(IList<int> hiddenSizes, SearchRange learningRate) => new()
    {
        WeightQuantizers =
        [
            QuantizerChoice.Float, QuantizerChoice.BinaryConnect, QuantizerChoice.BinaryWeightNet, QuantizerChoice.TernaryWeightNet,
            QuantizerChoice.ThresholdTernary, QuantizerChoice.Alternating(2), QuantizerChoice.Alternating(3), QuantizerChoice.Uniform(4),
        ],
        ActivationQuantizers = [QuantizerChoice.Float, QuantizerChoice.BernoulliTernary],
        ActivationSlope = new SearchRange(0.25, 1.0),
        Normalizations = [RecurrentNormalization.None, RecurrentNormalization.Weight, RecurrentNormalization.Layer],
        Cells = [RecurrentCellKind.Lstm, RecurrentCellKind.Gru],
        HiddenSizes = hiddenSizes,
        LearningRate = learningRate,
        UseKure = [false, true],
    };

    /// <summary>Sequential MNIST rows (28 steps of 28 pixels), the first <paramref name="trainCount"/> training images; validation accuracy.</summary>
    private static SweepTask SequentialMnist(DirectoryInfo data, int trainCount, int validCount)
    {
        if (validCount < 1) throw new ArgumentException("--valid-count must be at least 1: the sweep ranks trials by validation accuracy.");
        if (!data.Exists)
            throw new DirectoryNotFoundException($"MNIST folder '{data.FullName}' does not exist: run build/fetch-data.sh --only mnist, pass --data DIR, or use --task moby (no download).");
        var images = IdxReader.ReadImages(Path.Combine(data.FullName, "train-images-idx3-ubyte"), trainCount + validCount);
        var labels = IdxReader.ReadLabels(Path.Combine(data.FullName, "train-labels-idx1-ubyte"), trainCount + validCount);
        int n = Math.Min(trainCount, images.Images.Length - 1);
        var model = new SequenceClassifierOptions { ClassCount = 10, FrameSize = images.Columns };
        var training = new TrainingOptions
        {
            BatchSize = 50, Optimizer = OptimizerKind.Adam, LearningRateDecay = 1, GradientClipNorm = 1.0, ProgressInterval = 1000,
        };
        var runner = new SequenceClassifierTrialRunner(images.Images[..n], labels[..n], images.Images[n..], labels[n..], model, training);
        return new SweepTask($"sequential MNIST ({n:N0} training, {images.Images.Length - n:N0} validation images, {images.Rows} steps of {images.Columns} pixels)",
            "Sequential MNIST sweep", "accuracy", runner, SweepObjective.MaximizeAccuracy, SearchSpace([32, 64, 128], SearchRange.Log(1e-3, 1e-2)));
    }

    /// <summary>Character LMs on the first <paramref name="trainChars"/> characters of Moby Dick's training split; validation bits per character.</summary>
    internal static SweepTask MobyDick(int trainChars, int steps)
    {
        var text = EmbeddedCorpus.MobyDick();
        var (train, validation, _) = EmbeddedCorpus.Split(text);
        var vocabulary = Vocabulary.FromCharacters(text);
        var trainTokens = vocabulary.Encode(train[..Math.Min(trainChars, train.Length)], skipUnknownCharacters: true);
        var validationTokens = vocabulary.Encode(validation[..Math.Min(10_000, validation.Length)], skipUnknownCharacters: true);
        var model = new LanguageModelOptions { EmbeddingSize = 32 };
        var training = new TrainingOptions
        {
            BatchSize = 32, SequenceLength = 50, MaxStepsPerEpoch = steps, Optimizer = OptimizerKind.Adam,
            LearningRateDecay = 1, GradientClipNorm = 1.0, ProgressInterval = 1000,
        };
        var runner = new LanguageModelTrialRunner(vocabulary, trainTokens, validationTokens, model, training);
        return new SweepTask($"Moby Dick character LM ({trainTokens.Length:N0} training characters, {steps} steps per epoch)", "Moby Dick char LM sweep", "BPC",
            runner, SweepObjective.Minimize(LanguageModelTrialRunner.BitsPerToken), SearchSpace([32, 64, 128], SearchRange.Log(2e-3, 2e-2)));
    }

    private static async Task<int> Run(SweepTaskSettings settings, double minutes, int maxTrials, string tunerName, int maxEpochs, double underKb,
        int parallelism, int workers, int seed, FileInfo state, bool fresh, FileInfo plot, CancellationToken cancellationToken)
    {
        if (workers < 0) throw new ArgumentException($"--workers must be 0 (train here) or more; got {workers}.");
        var task = settings.Load();
        ISweepTuner tuner = tunerName.ToLowerInvariant() switch
        {
            "tpe" => new TreeParzenTuner(startupTrials: 9),
            "random" => new RandomTuner(),
            "grid" => new GridTuner(),
            _ => throw new ArgumentException($"--tuner '{tunerName}': use tpe, random or grid."),
        };
        if (fresh)
        {
            if (state.Exists) state.Delete();
            var trialsFolder = new DirectoryInfo(state.FullName + ".trials");
            if (trialsFolder.Exists) trialsFolder.Delete(recursive: true);
        }
        AnsiConsole.MarkupLine(
            $"[bold]Sweep[/]: {Markup.Escape(task.Description)}, {Markup.Escape(tunerName)} tuner, successive halving up to {maxEpochs} epochs, " +
            $"at most {maxTrials} configurations or {minutes:0.#} minutes. State: [blue]{Markup.Escape(state.FullName)}[/]{(state.Exists ? " (resuming)" : "")}.");
        if (parallelism <= 0) parallelism = Math.Max(1, workers);
        await using var cluster = workers > 0 ? await LocalSiloProcesses.StartAsync(workers, settings, cancellationToken) : null;
        if (cluster is not null) AnsiConsole.MarkupLine($"Training on {workers} local worker silo(s): {string.Join(", ", cluster.Describe())}.");

        var experiment = new QuantizationExperiment(seed)
            .SetSearchSpace(task.Space)
            .SetTuner(tuner)
            .SetTrialRunner(task.Runner)
            .SetObjective(task.Objective)
            .SetSuccessiveHalving(1, maxEpochs)
            .SetMaxModelToExplore(maxTrials)
            .SetTrainingTimeInSeconds(minutes * 60)
            .SetParallelism(parallelism)
            .SetStateFile(state.FullName)
            .SetMonitor(new ConsoleMonitor(task.MetricLabel));
        if (cluster is not null) await experiment.UseOrleansAsync(cluster.Client, settings.Task, cancellationToken: cancellationToken);
        SweepResult result;
        try
        {
            result = await experiment.RunAsync(cancellationToken);
        }
        catch (InvalidOperationException e) when (e.Message.Contains("state file", StringComparison.Ordinal))
        {
            AnsiConsole.MarkupLine($"[red]{Markup.Escape(e.Message)}[/] Run with --fresh to start over.");
            return 1;
        }

        PrintSummary(result, task.MetricLabel, underKb);
        File.WriteAllText(Path.ChangeExtension(state.FullName, ".csv"), result.ToCsv());
        if (result.ParetoFront.Count > 0)
        {
            SweepPlot.Write(result, plot, $"{task.Title}: {result.Trials.Count} trials, {tunerName}, successive halving 1-{maxEpochs} epochs");
            AnsiConsole.MarkupLine($"Plot: [blue]{Markup.Escape(plot.FullName)}[/]; table: [blue]{Markup.Escape(Path.ChangeExtension(state.FullName, ".csv"))}[/].");
        }
        return 0;
    }

    private static void PrintSummary(SweepResult result, string metricLabel, double underKb)
    {
        var ci = CultureInfo.InvariantCulture;
        AnsiConsole.MarkupLine(
            $"{result.Trials.Count} trials in {result.Elapsed.TotalMinutes:0.0} min ({result.StopReason}): " +
            $"{result.Trials.Count(t => t.Status == TrialStatus.Completed)} completed, {result.Trials.Count(t => t.Status == TrialStatus.Pruned)} pruned, " +
            $"{result.Trials.Count(t => t.Status == TrialStatus.Failed)} failed, {result.Trials.Count(t => t.Status == TrialStatus.Stopped)} stopped; " +
            $"{result.Trials.Sum(t => t.EpochsUsed)} epochs trained.");
        var table = new Table().Title($"Pareto front: validation {metricLabel} vs packed size").Border(TableBorder.Rounded);
        foreach (var column in new[] { "trial", "packed", metricLabel, "cell", "hidden", "weights", "activations", "slope", "norm", "lr", "KURE" })
            table.AddColumn(column);
        foreach (var t in result.ParetoFront)
        {
            var c = t.Configuration;
            table.AddRow(t.Id.ToString(ci), Kb(t.PackedBytes), t.Metric.ToString("F3", ci), c.Cell.ToString(), c.HiddenSize.ToString(ci),
                c.WeightQuantizer.Name, c.ActivationQuantizer.Name, c.ActivationSlope.ToString("0.##", ci), c.Normalization.ToString(),
                c.LearningRate.ToString("G3", ci), c.UseKure ? "on" : "off");
        }
        AnsiConsole.Write(table);
        if (result.Best is { } best) AnsiConsole.MarkupLine($"Best: [green]{Markup.Escape(best.ToString())}[/]");
        var limit = (long)(underKb * 1000);
        AnsiConsole.MarkupLine(result.BestUnderBytes(limit) is { } small
            ? $"Best under {underKb.ToString(ci)} KB: [green]{Markup.Escape(small.ToString())}[/] (model: {Markup.Escape(small.ModelPath ?? "-")})"
            : $"No completed model under {underKb.ToString(ci)} KB.");
    }

    internal static string Kb(long bytes) => (bytes / 1000.0).ToString("0.0", CultureInfo.InvariantCulture) + " KB";

    /// <summary>One line per finished trial.</summary>
    private sealed class ConsoleMonitor(string metricLabel) : ISweepMonitor
    {
        public void ReportRunningTrial(TrialContext context) =>
            AnsiConsole.MarkupLine($"[grey]#{context.TrialId} -> {context.Epochs} epochs: {Markup.Escape(context.Configuration.Key)}[/]");

        public void ReportCompletedTrial(TrialResult result) =>
            AnsiConsole.MarkupLine($"#{result.Id} [{(result.Status == TrialStatus.Completed ? "green" : "yellow")}]{result.Status}[/] " +
                $"{metricLabel} {result.Metric.ToString("F3", CultureInfo.InvariantCulture)} at {result.EpochsUsed} epochs, {Kb(result.PackedBytes)}, {result.Duration.TotalSeconds:0}s");

        public void ReportFailedTrial(TrialResult result) =>
            AnsiConsole.MarkupLine($"#{result.Id} [red]Failed[/]: {Markup.Escape(result.Error ?? "")}");
    }
}
