using System.CommandLine;
using System.Globalization;
using System.Text;
using Microsoft.ML.Quantized.Samples.Reproduction;
using Spectre.Console;

namespace Microsoft.ML.Quantized.Samples.Commands;

/// <summary>
/// Li et al. 2017 on a recurrent network (REPRODUCTION.md, "Training quantized nets", questions 3 and 5): the character LM
/// with 1-bit recurrent weights trained by BinaryConnect (float shadow weights, <c>bc</c>) and by stochastic rounding
/// without shadow weights (<c>sbc</c> with <see cref="TrainingOptions.KeepFloatShadowWeights"/> off: after every step each
/// weight is rounded to +-1 with probability hard-sigmoid(w)); per epoch the share of deployed input and recurrent weights
/// that changed sign, the validation bits per character and the training speed; over several batch sizes (question 4) at the
/// same epochs, or with <c>--equal-steps</c> at the same number of steps. Writes the <c>sign-flips</c> section of
/// docs/reproduction.md (<c>sign-flips-steps</c> at an equal step budget) and a plot.
/// </summary>
internal static class SignFlipCommand
{
    private const int SequenceLength = 100;

    private static readonly (string Label, string Quantizer, bool ShadowWeights)[] Methods =
    {
        ("BC (shadow weights)", "bc", true),
        ("SR (no shadow weights)", "sbc", false),
    };

    public static System.CommandLine.Command Create()
    {
        var epochs = new Option<int>("--epochs") { Description = "Whole epochs per method.", DefaultValueFactory = _ => 4 };
        var maxSteps = new Option<int>("--max-steps") { Description = "Cap on steps per epoch (0 = whole epochs).", DefaultValueFactory = _ => 0 };
        var hidden = new Option<int>("--hidden") { Description = "LSTM hidden units.", DefaultValueFactory = _ => 128 };
        var learningRate = new Option<double>("--learning-rate") { Description = "Adam learning rate of both methods.", DefaultValueFactory = _ => 3e-3 };
        var batchSizes = new Option<string>("--batch-sizes") { Description = "Comma-separated batch sizes (question 4): the per-epoch table is the first one's; with more than one, a table compares both methods' best validation BPC at each.", DefaultValueFactory = _ => "32" };
        var equalSteps = new Option<bool>("--equal-steps") { Description = "Question 4 at an equal step budget: every batch size trains for as many steps as the first one's --epochs (so more epochs as the batch grows) and the run writes its own section, sign-flips-steps; default: the same epochs at every batch size." };
        var output = new Option<FileInfo>("--out") { Description = "Markdown file whose sign-flips (or sign-flips-steps) section is replaced.", DefaultValueFactory = _ => new FileInfo("docs/reproduction.md") };
        var command = new System.CommandLine.Command("sign-flips", "Li et al. 2017 on the character LM: sign changes per epoch of BinaryConnect vs stochastic rounding, 1-bit weights.")
        {
            epochs, maxSteps, hidden, learningRate, batchSizes, equalSteps, output,
        };
        command.SetAction(parse => Run(parse.GetValue(epochs), parse.GetValue(maxSteps), parse.GetValue(hidden), parse.GetValue(learningRate),
            BatchSizes(parse.GetValue(batchSizes)!), parse.GetValue(equalSteps), parse.GetValue(output)!));
        return command;
    }

    private sealed record MethodRun(string Label, int BatchSize, int StepsPerEpoch, IReadOnlyList<EpochSummary> History, IReadOnlyList<IReadOnlyDictionary<string, double>> Rates);

    private static int[] BatchSizes(string list)
    {
        var parts = OptionList.Split(list);
        var sizes = parts.Select(p => int.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture, out var b) && b > 0
            ? b : throw new ArgumentException($"--batch-sizes: '{p}' is not a positive whole number (e.g. 32,128,256,512,1024).")).ToArray();
        return sizes.Length > 0 ? sizes : throw new ArgumentException("--batch-sizes: give at least one batch size (e.g. 32).");
    }

    private static int Run(int epochs, int maxSteps, int hidden, double learningRate, int[] batchSizes, bool equalSteps, FileInfo output)
    {
        if (epochs < 1) throw new ArgumentException($"--epochs must be at least 1; got {epochs}.");
        var load = BenchmarkCommand.LoadAverage();
        var text = EmbeddedCorpus.MobyDick();
        var (train, validation, _) = EmbeddedCorpus.Split(text);
        var vocabulary = Vocabulary.FromCharacters(text);
        int trainCharacters = vocabulary.Encode(train).Length;
        // At an equal step budget each batch size takes the epochs closest to the first one's steps (at least one).
        int budget = epochs * StepBudget.StepsPerEpoch(trainCharacters, batchSizes[0], SequenceLength, maxSteps);
        int EpochsAt(int batch) => equalSteps ? StepBudget.Epochs(budget, StepBudget.StepsPerEpoch(trainCharacters, batch, SequenceLength, maxSteps)) : epochs;
        var runs = (from batch in batchSizes
                    from m in Methods
                    select ConsoleProgress.Run($"{m.Label}, batch {batch}", progress =>
                        Train(vocabulary, train, validation, m.Quantizer, m.ShadowWeights, EpochsAt(batch), maxSteps, hidden, learningRate, batch, progress)
                            with { Label = m.Label })).ToList();
        var first = runs.Where(r => r.BatchSize == batchSizes[0]).ToList();
        string section = equalSteps ? "sign-flips-steps" : "sign-flips";
        var markdown = Render(first, runs, epochs, maxSteps, hidden, learningRate, equalSteps, section, load);
        BenchmarkCommand.WriteSection(output, markdown, $"<!-- bench:{section} -->", $"<!-- /bench:{section} -->");
        Plot(first, Path.Combine(output.DirectoryName ?? ".", $"reproduction-{section}.png"));
        AnsiConsole.WriteLine(markdown);
        return 0;
    }

    private static MethodRun Train(Vocabulary vocabulary, string train, string validation, string quantizer, bool shadowWeights,
        int epochs, int maxSteps, int hidden, double learningRate, int batchSize, IProgress<TrainingProgress> progress)
    {
        var options = new LanguageModelOptions
        {
            EmbeddingSize = 64,
            Recurrent = new QuantizedRecurrentOptions { HiddenSize = hidden, Normalization = RecurrentNormalization.Weight, WeightQuantizer = QuantizerRegistry.Parse(quantizer) },
        };
        var training = new TrainingOptions
        {
            Epochs = epochs, MaxStepsPerEpoch = maxSteps, BatchSize = batchSize, SequenceLength = SequenceLength, KeepFloatShadowWeights = shadowWeights,
            Optimizer = OptimizerKind.Adam, LearningRate = learningRate, LearningRateDecay = 1, GradientClipNorm = 1.0, Seed = 1,
        };
        var trainTokens = vocabulary.Encode(train);
        var validationTokens = vocabulary.Encode(validation);
        using var random = TrainingRandom.Use(training.Seed);
        using var network = new LanguageModelNetwork(vocabulary.Count, options);
        using var trainBatches = new TokenStreamBatcher(trainTokens, training.BatchSize, training.SequenceLength, TorchSharp.torch.CPU);
        using var validationBatches = new TokenStreamBatcher(validationTokens, PackedLanguageModel.EvaluationStreams(validationTokens.Length), training.SequenceLength, TorchSharp.torch.CPU);
        using var task = new LanguageModelTask(network, trainBatches, validationBatches);
        using var recorder = new SignFlipRecorder(task, network.Recurrent.QuantizedWeights());
        var history = TrainingLoop.Run(recorder, training, $"sign-flips {quantizer} {shadowWeights}", progress, CancellationToken.None);
        return new MethodRun(quantizer, batchSize, StepBudget.StepsPerEpoch(trainTokens.Length, batchSize, SequenceLength, maxSteps), history, recorder.Rates);
    }

    /// <summary>
    /// The section: the per-epoch table of <paramref name="runs"/> (the first batch size's) and, over several batch sizes, the
    /// batch table of <paramref name="all"/>; <paramref name="section"/> names the plot.
    /// </summary>
    private static string Render(List<MethodRun> runs, List<MethodRun> all, int epochs, int maxSteps, int hidden, double learningRate, bool equalSteps,
        string section, string? load)
    {
        var sb = new StringBuilder();
        sb.AppendLine("## Training quantized nets (Li et al. 2017): sign changes of BinaryConnect vs stochastic rounding in an LSTM" +
                      (equalSteps ? ", batch sizes at an equal step budget" : ""));
        sb.AppendLine();
        var rate = learningRate.ToString("G3", CultureInfo.InvariantCulture);
        sb.AppendLine(
            $"Moby Dick character LM, LSTM 1 x {hidden} with 1-bit recurrent weights and weight normalization (BC without normalization trains far worse, with exploding gradients: " +
            $"see the study grid), embedding 64 and decoder float, batch {runs[0].BatchSize} x 100 characters, Adam {rate} (no decay), clip 1.0, " +
            $"{epochs} epoch(s){(maxSteps > 0 ? $" of at most {maxSteps} steps" : "")}, seed 1. **BC**: `bc`, float shadow weights, deployed sign(w). " +
            "**SR**: `sbc` with `KeepFloatShadowWeights = false`: after every optimizer step each weight is rounded to +1 with probability " +
            "hard-sigmoid(w), else -1, and nothing else is kept. Flips: the share of layer 0's deployed input (W_ih) and recurrent (W_hh) weights " +
            $"whose sign differs from the previous epoch's end (epoch 1: from the initial weights). {BenchmarkCommand.Provenance(load)}");
        sb.AppendLine();
        sb.Append("| epoch |");
        foreach (var r in runs) sb.Append($" {r.Label}: W_ih flips | W_hh flips | valid BPC |");
        sb.AppendLine();
        sb.Append("|---:|");
        foreach (var _ in runs) sb.Append("---:|---:|---:|");
        sb.AppendLine();
        for (int e = 0; e < runs.Max(r => r.History.Count); e++)
        {
            sb.Append($"| {e + 1} |");
            foreach (var r in runs)
            {
                if (e >= r.History.Count) { sb.Append(" - | - | - |"); continue; }
                sb.Append(string.Create(CultureInfo.InvariantCulture,
                    $" {r.Rates[e]["layers.0.weight_ih"]:P2} | {r.Rates[e]["layers.0.weight_hh"]:P2} | {r.History[e].ValidationLoss / Math.Log(2):F3} |"));
            }
            sb.AppendLine();
        }
        sb.AppendLine();
        sb.AppendLine("Training speed (question 5), mean over the epochs: " + string.Join("; ", runs.Select(r =>
            string.Create(CultureInfo.InvariantCulture, $"{r.Label} {r.History.Average(h => h.UnitsPerSecond):N0} characters/s")))
            + $". Plot: `reproduction-{section}.png`.");
        var batches = all.Select(r => r.BatchSize).Distinct().ToList();
        if (batches.Count > 1)
        {
            sb.AppendLine();
            sb.AppendLine(equalSteps
                ? $"Batch sizes (question 4) at an equal step budget, the first batch size's {epochs} epoch(s) of steps (so more epochs as the batch grows), " +
                  "the same learning rate at each: best validation BPC of each method, its ratio, the last epoch's W_hh flips and the training speed."
                : $"Batch sizes (question 4), the same {epochs} epoch(s) and learning rate at each (so fewer, larger steps as the batch grows): " +
                  "best validation BPC of each method, its ratio, the last epoch's W_hh flips and the training speed.");
            sb.AppendLine();
            sb.AppendLine("| batch | epochs | steps per epoch | BC valid BPC | SR valid BPC | SR / BC | BC W_hh flips (last epoch) | SR W_hh flips (last epoch) | BC characters/s | SR characters/s |");
            sb.AppendLine("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
            foreach (var batch in batches)
            {
                var (bc, sr) = (all.First(r => r.BatchSize == batch && r.Label == Methods[0].Label), all.First(r => r.BatchSize == batch && r.Label == Methods[1].Label));
                double Best(MethodRun r) => r.History.Min(h => h.ValidationLoss) / Math.Log(2);
                sb.AppendLine(string.Create(CultureInfo.InvariantCulture,
                    $"| {batch} | {bc.History.Count} | {bc.StepsPerEpoch:N0} | {Best(bc):F3} | {Best(sr):F3} | {Best(sr) / Best(bc):F3} | " +
                    $"{bc.Rates[^1]["layers.0.weight_hh"]:P2} | {sr.Rates[^1]["layers.0.weight_hh"]:P2} | " +
                    $"{bc.History.Average(h => h.UnitsPerSecond):N0} | {sr.History.Average(h => h.UnitsPerSecond):N0} |"));
            }
        }
        return sb.ToString();
    }

    /// <summary>Recurrent-weight sign flips per epoch, one line per method, log scale.</summary>
    private static void Plot(List<MethodRun> runs, string path)
    {
        var plot = new ScottPlot.Plot();
        foreach (var (run, color) in runs.Zip(new[] { ScottPlot.Colors.SteelBlue, ScottPlot.Colors.OrangeRed }))
        {
            var xs = Enumerable.Range(1, run.Rates.Count).Select(e => (double)e).ToArray();
            var line = plot.Add.Scatter(xs, run.Rates.Select(r => Math.Log10(Math.Max(r["layers.0.weight_hh"], 1e-7) * 100)).ToArray());
            line.LegendText = run.Label + ", W_hh";
            line.Color = color;
            line.LineWidth = 2;
            line.MarkerSize = 8;
        }
        plot.Title("Sign changes of the deployed recurrent weights per epoch");
        plot.XLabel("epoch");
        plot.YLabel("log10 (% of W_hh weights that changed sign)");
        plot.ShowLegend(ScottPlot.Alignment.UpperRight);
        plot.SavePng(path, 1000, 600);
    }
}
