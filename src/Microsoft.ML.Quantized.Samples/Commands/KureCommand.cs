using System.CommandLine;
using System.Globalization;
using System.Text;
using Spectre.Console;

namespace Microsoft.ML.Quantized.Samples.Commands;

/// <summary>
/// KURE (Shkolnik et al. 2020) on the embedded Moby Dick character LM: trains a float LSTM, fine-tunes two copies for
/// the same steps with Adam at 1e-3, one without and one with the kurtosis term, then quantizes all three after
/// training to 4, 3 and 2 bits (uniform, per tensor) and with a 4-bit step 5% off or rounded to a power of two (part a).
/// Part b: two more copies of the float model are trained quantization-aware at 4 bits (uniform weights, straight-through
/// estimator) for the same number of steps, without and with the kurtosis term, then re-quantized after training to
/// 3, 5, 6 and 8 bits. Writes a section of docs/benchmarks.md.
/// </summary>
internal static class KureCommand
{
    private const string SectionStart = "<!-- bench:kure -->";
    private const string SectionEnd = "<!-- /bench:kure -->";

    public static System.CommandLine.Command Create()
    {
        var steps = new Option<int>("--max-steps") { Description = "Training steps of the float model.", DefaultValueFactory = _ => 400 };
        var fineTuneSteps = new Option<int>("--fine-tune-steps") { Description = "Fine-tuning steps of each copy (with and without KURE).", DefaultValueFactory = _ => 200 };
        var qatSteps = new Option<int>("--qat-steps") { Description = "Part b: 4-bit quantization-aware training steps of each copy (with and without KURE), from the float model; 0 skips part b.", DefaultValueFactory = _ => 200 };
        var hidden = new Option<int>("--hidden") { Description = "LSTM hidden units.", DefaultValueFactory = _ => 256 };
        var lambda = new Option<double>("--lambda") { Description = "KURE coefficient (KureOptions.Lambda).", DefaultValueFactory = _ => 1.0 };
        var seed = new Option<int>("--seed") { Description = "Random seed.", DefaultValueFactory = _ => 1 };
        var output = new Option<FileInfo>("--out") { Description = "Markdown file to write (its KURE section is replaced).", DefaultValueFactory = _ => new FileInfo("docs/benchmarks.md") };
        var command = new System.CommandLine.Command("kure", "KURE: post-training quantization of a Moby Dick char LSTM fine-tuned without vs with kurtosis regularization.")
        {
            steps, fineTuneSteps, qatSteps, hidden, lambda, seed, output,
        };
        command.SetAction(parse => Run(parse.GetValue(steps), parse.GetValue(fineTuneSteps), parse.GetValue(qatSteps), parse.GetValue(hidden),
            parse.GetValue(lambda), parse.GetValue(seed), parse.GetValue(output)!));
        return command;
    }

    private static int Run(int steps, int fineTuneSteps, int qatSteps, int hidden, double lambda, int seed, FileInfo output)
    {
        if (steps < 1 || fineTuneSteps < 1 || qatSteps < 0)
            throw new ArgumentException($"--max-steps and --fine-tune-steps must be at least 1 and --qat-steps at least 0; got {steps}, {fineTuneSteps} and {qatSteps}.");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var load = File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Split(' ')[0] : null;
        var text = EmbeddedCorpus.MobyDick();
        var (train, validation, test) = EmbeddedCorpus.Split(text);
        var vocabulary = Vocabulary.FromCharacters(text);
        var trainTokens = vocabulary.Encode(train, skipUnknownCharacters: true);
        var validationTokens = vocabulary.Encode(validation, skipUnknownCharacters: true);
        var testTokens = vocabulary.Encode(test, skipUnknownCharacters: true);
        AnsiConsole.MarkupLine($"[bold]KURE[/] on the Moby Dick character LM: LSTM 1x{hidden}, {steps} training steps, {fineTuneSteps} fine-tuning steps per copy" +
                               (qatSteps > 0 ? $", {qatSteps} 4-bit quantization-aware steps per copy." : "."));

        var options = new LanguageModelOptions { EmbeddingSize = 64, Recurrent = new QuantizedRecurrentOptions { HiddenSize = hidden } };
        var training = new TrainingOptions
        {
            Epochs = 1, MaxStepsPerEpoch = steps, BatchSize = 32, SequenceLength = 100,
            Optimizer = OptimizerKind.Adam, LearningRate = 3e-3, LearningRateDecay = 1, GradientClipNorm = 1.0, Seed = seed,
        };
        var fineTuning = training.Clone();
        fineTuning.MaxStepsPerEpoch = fineTuneSteps;
        fineTuning.LearningRate = 1e-3; // the paper's fine-tuning rate (Adam)

        var builder = new RobustnessReportBuilder { BitWidths = new List<int> { 2, 3, 4 }, StepSizeMultipliers = new List<double> { 0.95, 1.05 } };
        RobustnessReport Report(QuantizedLanguageModel m) => Timed("robustness report", () => builder.Build(m, x => x.Evaluate(testTokens).BitsPerToken, "test BPC"));
        T Timed<T>(string what, Func<T> run)
        {
            var result = run();
            AnsiConsole.MarkupLine($"[grey]{Markup.Escape(what)} done at {clock.Elapsed.TotalMinutes:F1} min.[/]");
            return result;
        }

        using var trained = Timed("float training", () => ConsoleProgress.Run("float", p => QuantizedLanguageModel.Train(vocabulary, trainTokens, validationTokens, options, training, p)));
        using var plain = Timed("fine-tune, no KURE", () => ConsoleProgress.Run("fine-tune, no KURE", p => trained.FineTuneWithKure(trainTokens, validationTokens, new KureOptions { Lambda = 0 }, fineTuning, p)));
        var kure = new KureOptions { Lambda = lambda };
        using var regularized = Timed("fine-tune, KURE", () => ConsoleProgress.Run("fine-tune, KURE", p => trained.FineTuneWithKure(trainTokens, validationTokens, kure, fineTuning, p)));

        var columns = new (string Name, RobustnessReport Report)[]
        {
            ("trained", Report(trained)),
            ("+ fine-tune, no KURE", Report(plain)),
            ($"+ fine-tune, KURE (lambda {lambda.ToString(CultureInfo.InvariantCulture)})", Report(regularized)),
        };
        var markdown = Render(columns, hidden, steps, fineTuneSteps, load);
        if (qatSteps > 0)
        {
            var qat = fineTuning.Clone();
            qat.MaxStepsPerEpoch = qatSteps;
            // Part a covers the step perturbations and the gates; here only the bit widths and the power-of-two step.
            var qatBuilder = new RobustnessReportBuilder { BitWidths = new List<int> { 3, 4, 5, 6, 8 }, StepSizeMultipliers = new List<double>(), RecordGates = false };
            RobustnessReport QatReport(QuantizedLanguageModel m) => Timed("robustness report", () => qatBuilder.Build(m, x => x.Evaluate(testTokens).BitsPerToken, "test BPC"));
            using var fourBit = trained.WithQuantization(new QuantizerOptions { Kind = QuantizerKind.Uniform, Bits = 4 });
            using var qatPlain = Timed("4-bit QAT, no KURE", () => ConsoleProgress.Run("4-bit QAT, no KURE", p => fourBit.FineTuneWithKure(trainTokens, validationTokens, new KureOptions { Lambda = 0 }, qat, p)));
            using var qatKure = Timed("4-bit QAT, KURE", () => ConsoleProgress.Run("4-bit QAT, KURE", p => fourBit.FineTuneWithKure(trainTokens, validationTokens, kure, qat, p)));
            markdown += RenderQat(new[]
            {
                ("4-bit QAT, no KURE", QatReport(qatPlain)),
                ($"4-bit QAT, KURE (lambda {lambda.ToString(CultureInfo.InvariantCulture)})", QatReport(qatKure)),
            }, steps, qatSteps);
        }
        markdown += $"\nWhole run (training, fine-tuning, every evaluation): {clock.Elapsed.TotalMinutes:F1} minutes.\n";
        AnsiConsole.WriteLine(markdown);
        BenchmarkCommand.WriteSection(output, markdown, SectionStart, SectionEnd);
        AnsiConsole.MarkupLine($"Written to [blue]{Markup.Escape(output.FullName)}[/].");
        return 0;
    }

    private static string Render((string Name, RobustnessReport Report)[] columns, int hidden, int steps, int fineTuneSteps, string? load)
    {
        var sb = new StringBuilder();
        sb.AppendLine("## KURE: one float model, many bit widths (Moby Dick character LM)");
        sb.AppendLine();
        sb.AppendLine($"LSTM 1x{hidden}, embedding 64, batch 32, bptt 100, Adam 3e-3, {steps} steps; then two copies fine-tuned {fineTuneSteps} steps " +
                      "with Adam 1e-3 (the paper's rate), without and with the kurtosis term on the recurrent weights (target 1.8). " +
                      "Every column is then quantized after training, no retraining: uniform symmetric, one step per tensor (max |w| / (2^(b-1) - 1)). " +
                      $"Test bits per character (lower is better). Machine: {BenchmarkCommand.MachineDescription()}" +
                      (load is null ? ". " : $", 1-minute load average {load} at the start (the cores were shared with other work). ") +
                      $"Generated by `dotnet run --project src/Microsoft.ML.Quantized.Samples -c Release -- kure` on {DateTime.UtcNow:yyyy-MM-dd}.");
        sb.AppendLine();
        Table(sb, columns, ratioBits: 2);
        sb.AppendLine();
        sb.AppendLine("Weight and gate statistics of the KURE model:");
        sb.AppendLine();
        sb.Append(columns[^1].Report.ToMarkdown(3).Split("### Weight kurtosis", 2) is { Length: 2 } parts ? "### Weight kurtosis" + parts[1] : "");
        return sb.ToString();
    }

    private static string RenderQat((string Name, RobustnessReport Report)[] columns, int steps, int qatSteps)
    {
        var sb = new StringBuilder();
        sb.AppendLine();
        sb.AppendLine("## KURE: one 4-bit model, other bit widths (Moby Dick character LM)");
        sb.AppendLine();
        sb.AppendLine($"Same data and network as above. Two copies of the float model ({steps} steps) are trained quantization-aware at 4 bits " +
                      $"(uniform symmetric weights, one step per tensor, straight-through estimator) for {qatSteps} steps with Adam 1e-3, " +
                      "without and with the kurtosis term on the recurrent weights (target 1.8); each is then re-quantized after training " +
                      "to the other bit widths and to a power-of-two 4-bit step, no retraining. Test bits per character (lower is better); same machine and run as above.");
        sb.AppendLine();
        Table(sb, columns, ratioBits: 3);
        return sb.ToString();
    }

    /// <summary>
    /// One column per report: the metric at each bit width (the "as trained" row only where no uniform row repeats its
    /// quantizer), each step-size row, the mean recurrent-weight kurtosis and the metric at <paramref name="ratioBits"/> over float.
    /// </summary>
    private static void Table(StringBuilder sb, (string Name, RobustnessReport Report)[] columns, int ratioBits)
    {
        sb.AppendLine("| weights | " + string.Join(" | ", columns.Select(c => c.Name)) + " |");
        sb.AppendLine("|---|" + string.Concat(columns.Select(_ => "---:|")));
        var first = columns[0].Report;
        foreach (var row in first.BitWidths.Where(r => r.Label != "as trained" || first.BitWidths.Count(o => o.Quantizer == r.Quantizer) == 1))
            sb.AppendLine($"| {row.Label} (`{row.Quantizer}`) | " + string.Join(" | ", columns.Select(c => F(c.Report.BitWidths.First(r => r.Label == row.Label).Metric))) + " |");
        foreach (var row in first.StepSizes.Skip(1))
            sb.AppendLine($"| {first.PerturbationBits}-bit, {row.Label} (`{row.Quantizer}`) | " + string.Join(" | ", columns.Select(c => F(c.Report.StepSizes.First(r => r.Label == row.Label).Metric))) + " |");
        sb.AppendLine("| mean kurtosis of the recurrent weights | " + string.Join(" | ", columns.Select(c => F(c.Report.Weights.Where(w => w.Name.StartsWith("layers.", StringComparison.Ordinal)).Average(w => w.Kurtosis)))) + " |");
        sb.AppendLine($"| {ratioBits}-bit BPC / float BPC | " + string.Join(" | ", columns.Select(c => F(c.Report.AtBits(ratioBits)!.Metric / c.Report.Float.Metric))) + " |");
    }

    private static string F(double value) => value.ToString("F3", CultureInfo.InvariantCulture);
}
