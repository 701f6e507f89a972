using System.CommandLine;
using System.Globalization;
using Microsoft.ML.Quantized.Sweep;
using Spectre.Console;

namespace Microsoft.ML.Quantized.Samples.Commands;

/// <summary>
/// Sweeps quantized character LMs on a slice of the embedded Moby Dick: which weight quantizer, bit width, cell,
/// normalization, hidden size, learning rate and KURE setting give the best bits per character for their packed size.
/// TPE with successive halving over epochs (1, 3, 9) within a time budget (default 10 minutes); prints the Pareto front
/// and writes a PNG plot of BPC against packed size. The sweep state is saved after every trial: run the command again
/// to resume a killed sweep (<c>--fresh</c> starts over).
/// </summary>
internal static class SweepCommand
{
    public static System.CommandLine.Command Create()
    {
        var minutes = new Option<double>("--minutes") { Description = "Time budget of the sweep in minutes.", DefaultValueFactory = _ => 10 };
        var trials = new Option<int>("--trials") { Description = "Most configurations to try (brackets of 9 with successive halving).", DefaultValueFactory = _ => 27 };
        var tuner = new Option<string>("--tuner") { Description = "tpe, random or grid.", DefaultValueFactory = _ => "tpe" };
        var steps = new Option<int>("--steps-per-epoch") { Description = "Training steps per epoch (batch 32 x 50 characters).", DefaultValueFactory = _ => 20 };
        var maxEpochs = new Option<int>("--max-epochs") { Description = "Full epoch budget (successive halving rungs 1, 3, 9 for 9).", DefaultValueFactory = _ => 9 };
        var trainChars = new Option<int>("--train-chars") { Description = "Characters of Moby Dick to train on.", DefaultValueFactory = _ => 200_000 };
        var underKb = new Option<double>("--under-kb") { Description = "Also report the best model under this packed size (KB).", DefaultValueFactory = _ => 20 };
        var parallelism = new Option<int>("--parallelism") { Description = "Trials at the same time.", DefaultValueFactory = _ => 1 };
        var seed = new Option<int>("--seed") { Description = "Random seed (tuner and training).", DefaultValueFactory = _ => 1 };
        var state = new Option<FileInfo>("--state") { Description = "Sweep state file (resumed when it exists).", DefaultValueFactory = _ => new FileInfo("artifacts/sweep/moby-dick.json") };
        var fresh = new Option<bool>("--fresh") { Description = "Delete the state file and the trials' checkpoints first." };
        var plot = new Option<FileInfo>("--plot") { Description = "PNG plot of BPC against packed size.", DefaultValueFactory = _ => new FileInfo("docs/sweep-pareto.png") };
        var command = new System.CommandLine.Command("sweep", "Sweep quantized char LSTM/GRU configurations on Moby Dick: Pareto front of bits per character vs packed size.")
        {
            minutes, trials, tuner, steps, maxEpochs, trainChars, underKb, parallelism, seed, state, fresh, plot,
        };
        command.SetAction((parse, token) => Run(parse.GetValue(minutes), parse.GetValue(trials), parse.GetValue(tuner)!, parse.GetValue(steps),
            parse.GetValue(maxEpochs), parse.GetValue(trainChars), parse.GetValue(underKb), parse.GetValue(parallelism), parse.GetValue(seed),
            parse.GetValue(state)!, parse.GetValue(fresh), parse.GetValue(plot)!, token));
        return command;
    }

    /// <summary>
    /// The sample's space: seven weight quantizers and a float baseline, HitNet's ternary activations and slopes, three
    /// normalizations, both cells, small hidden sizes (the sweep must fit ~10 minutes on 2 cores; slopes other than 1 and
    /// activation quantizers run the cell loop).
    /// </summary>
    internal static QuantizationSearchSpace SearchSpace() => new()
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
        HiddenSizes = [32, 64, 128],
        LearningRate = SearchRange.Log(2e-3, 2e-2),
        UseKure = [false, true],
    };

    private static async Task<int> Run(double minutes, int maxTrials, string tunerName, int steps, int maxEpochs, int trainChars, double underKb,
        int parallelism, int seed, FileInfo state, bool fresh, FileInfo plot, CancellationToken cancellationToken)
    {
        ISweepTuner tuner = tunerName.ToLowerInvariant() switch
        {
            "tpe" => new TreeParzenTuner(startupTrials: 9),
            "random" => new RandomTuner(),
            "grid" => new GridTuner(),
            _ => throw new ArgumentException($"--tuner '{tunerName}': use tpe, random or grid."),
        };
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

        if (fresh)
        {
            if (state.Exists) state.Delete();
            var trialsFolder = new DirectoryInfo(state.FullName + ".trials");
            if (trialsFolder.Exists) trialsFolder.Delete(recursive: true);
        }
        AnsiConsole.MarkupLine(
            $"[bold]Sweep[/]: Moby Dick character LM ({trainTokens.Length:N0} training characters), {Markup.Escape(tunerName)} tuner, successive halving up to {maxEpochs} epochs " +
            $"of {steps} steps, at most {maxTrials} configurations or {minutes:0.#} minutes. State: [blue]{Markup.Escape(state.FullName)}[/]{(state.Exists ? " (resuming)" : "")}.");

        var experiment = new QuantizationExperiment(seed)
            .SetSearchSpace(SearchSpace())
            .SetTuner(tuner)
            .SetTrialRunner(runner)
            .SetObjective(SweepObjective.Minimize(LanguageModelTrialRunner.BitsPerToken))
            .SetSuccessiveHalving(1, maxEpochs)
            .SetMaxModelToExplore(maxTrials)
            .SetTrainingTimeInSeconds(minutes * 60)
            .SetParallelism(parallelism)
            .SetStateFile(state.FullName)
            .SetMonitor(new ConsoleMonitor());
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

        PrintSummary(result, underKb);
        File.WriteAllText(Path.ChangeExtension(state.FullName, ".csv"), result.ToCsv());
        if (result.ParetoFront.Count > 0)
        {
            SweepPlot.Write(result, plot, $"Moby Dick char LM sweep: {result.Trials.Count} trials, {tunerName}, successive halving 1-{maxEpochs} epochs");
            AnsiConsole.MarkupLine($"Plot: [blue]{Markup.Escape(plot.FullName)}[/]; table: [blue]{Markup.Escape(Path.ChangeExtension(state.FullName, ".csv"))}[/].");
        }
        return 0;
    }

    private static void PrintSummary(SweepResult result, double underKb)
    {
        var ci = CultureInfo.InvariantCulture;
        AnsiConsole.MarkupLine(
            $"{result.Trials.Count} trials in {result.Elapsed.TotalMinutes:0.0} min ({result.StopReason}): " +
            $"{result.Trials.Count(t => t.Status == TrialStatus.Completed)} completed, {result.Trials.Count(t => t.Status == TrialStatus.Pruned)} pruned, " +
            $"{result.Trials.Count(t => t.Status == TrialStatus.Failed)} failed, {result.Trials.Count(t => t.Status == TrialStatus.Stopped)} stopped; " +
            $"{result.Trials.Sum(t => t.EpochsUsed)} epochs trained.");
        var table = new Table().Title("Pareto front: validation bits per character vs packed size").Border(TableBorder.Rounded);
        foreach (var column in new[] { "trial", "packed", "BPC", "cell", "hidden", "weights", "activations", "slope", "norm", "lr", "KURE" })
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
    private sealed class ConsoleMonitor : ISweepMonitor
    {
        public void ReportRunningTrial(TrialContext context) =>
            AnsiConsole.MarkupLine($"[grey]#{context.TrialId} -> {context.Epochs} epochs: {Markup.Escape(context.Configuration.Key)}[/]");

        public void ReportCompletedTrial(TrialResult result) =>
            AnsiConsole.MarkupLine($"#{result.Id} [{(result.Status == TrialStatus.Completed ? "green" : "yellow")}]{result.Status}[/] " +
                $"BPC {result.Metric.ToString("F3", CultureInfo.InvariantCulture)} at {result.EpochsUsed} epochs, {Kb(result.PackedBytes)}, {result.Duration.TotalSeconds:0}s");

        public void ReportFailedTrial(TrialResult result) =>
            AnsiConsole.MarkupLine($"#{result.Id} [red]Failed[/]: {Markup.Escape(result.Error ?? "")}");
    }
}
