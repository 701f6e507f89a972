using System.CommandLine;
using System.Globalization;
using System.Text;
using Spectre.Console;

namespace Microsoft.ML.Quantized.Samples.Commands;

/// <summary>
/// KURE (Shkolnik et al. 2020) on the embedded Moby Dick character LM: trains a float LSTM, fine-tunes two copies for
/// the same steps with Adam at 1e-3, one without and one with the kurtosis term, then quantizes all three after
/// training to 4, 3 and 2 bits (uniform, per tensor) and with a 4-bit step 5% off or rounded to a power of two.
/// Writes a section of docs/benchmarks.md.
/// </summary>
internal static class KureCommand
{
    private const string SectionStart = "<!-- bench:kure -->";
    private const string SectionEnd = "<!-- /bench:kure -->";

    public static System.CommandLine.Command Create()
    {
        var steps = new Option<int>("--max-steps") { Description = "Training steps of the float model.", DefaultValueFactory = _ => 400 };
        var fineTuneSteps = new Option<int>("--fine-tune-steps") { Description = "Fine-tuning steps of each copy (with and without KURE).", DefaultValueFactory = _ => 200 };
        var hidden = new Option<int>("--hidden") { Description = "LSTM hidden units.", DefaultValueFactory = _ => 256 };
        var lambda = new Option<double>("--lambda") { Description = "KURE coefficient (KureOptions.Lambda).", DefaultValueFactory = _ => 1.0 };
        var seed = new Option<int>("--seed") { Description = "Random seed.", DefaultValueFactory = _ => 1 };
        var output = new Option<FileInfo>("--out") { Description = "Markdown file to write (its KURE section is replaced).", DefaultValueFactory = _ => new FileInfo("docs/benchmarks.md") };
        var command = new System.CommandLine.Command("kure", "KURE: post-training quantization of a Moby Dick char LSTM fine-tuned without vs with kurtosis regularization.")
        {
            steps, fineTuneSteps, hidden, lambda, seed, output,
        };
        command.SetAction(parse => Run(parse.GetValue(steps), parse.GetValue(fineTuneSteps), parse.GetValue(hidden), parse.GetValue(lambda),
            parse.GetValue(seed), parse.GetValue(output)!));
        return command;
    }

    private static int Run(int steps, int fineTuneSteps, int hidden, double lambda, int seed, FileInfo output)
    {
        var text = EmbeddedCorpus.MobyDick();
        var (train, validation, test) = EmbeddedCorpus.Split(text);
        var vocabulary = Vocabulary.FromCharacters(text);
        var trainTokens = vocabulary.Encode(train, skipUnknownCharacters: true);
        var validationTokens = vocabulary.Encode(validation, skipUnknownCharacters: true);
        var testTokens = vocabulary.Encode(test, skipUnknownCharacters: true);
        AnsiConsole.MarkupLine($"[bold]KURE[/] on the Moby Dick character LM: LSTM 1x{hidden}, {steps} training steps, {fineTuneSteps} fine-tuning steps per copy.");

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
        RobustnessReport Report(QuantizedLanguageModel m) => builder.Build(m, x => x.Evaluate(testTokens).BitsPerToken, "test BPC");

        using var trained = ConsoleProgress.Run("float", p => QuantizedLanguageModel.Train(vocabulary, trainTokens, validationTokens, options, training, p));
        using var plain = ConsoleProgress.Run("fine-tune, no KURE", p => trained.FineTuneWithKure(trainTokens, validationTokens, new KureOptions { Lambda = 0 }, fineTuning, p));
        var kure = new KureOptions { Lambda = lambda };
        using var regularized = ConsoleProgress.Run("fine-tune, KURE", p => trained.FineTuneWithKure(trainTokens, validationTokens, kure, fineTuning, p));

        var columns = new (string Name, RobustnessReport Report)[]
        {
            ("trained", Report(trained)),
            ("+ fine-tune, no KURE", Report(plain)),
            ($"+ fine-tune, KURE (lambda {lambda.ToString(CultureInfo.InvariantCulture)})", Report(regularized)),
        };
        var markdown = Render(columns, hidden, steps, fineTuneSteps);
        AnsiConsole.WriteLine(markdown);
        BenchmarkCommand.WriteSection(output, markdown, SectionStart, SectionEnd);
        AnsiConsole.MarkupLine($"Written to [blue]{Markup.Escape(output.FullName)}[/].");
        return 0;
    }

    private static string Render((string Name, RobustnessReport Report)[] columns, int hidden, int steps, int fineTuneSteps)
    {
        var sb = new StringBuilder();
        sb.AppendLine("## KURE: one float model, many bit widths (Moby Dick character LM)");
        sb.AppendLine();
        sb.AppendLine($"LSTM 1x{hidden}, embedding 64, batch 32, bptt 100, Adam 3e-3, {steps} steps; then two copies fine-tuned {fineTuneSteps} steps " +
                      "with Adam 1e-3 (the paper's rate), without and with the kurtosis term on the recurrent weights (target 1.8). " +
                      "Every column is then quantized after training, no retraining: uniform symmetric, one step per tensor (max |w| / (2^(b-1) - 1)). " +
                      $"Test bits per character (lower is better). Machine: {BenchmarkCommand.MachineDescription()}. " +
                      $"Generated by `dotnet run --project src/Microsoft.ML.Quantized.Samples -c Release -- kure` on {DateTime.UtcNow:yyyy-MM-dd}.");
        sb.AppendLine();
        sb.AppendLine("| weights | " + string.Join(" | ", columns.Select(c => c.Name)) + " |");
        sb.AppendLine("|---|" + string.Concat(columns.Select(_ => "---:|")));
        var first = columns[0].Report;
        foreach (var row in first.BitWidths)
            sb.AppendLine($"| {row.Label} (`{row.Quantizer}`) | " + string.Join(" | ", columns.Select(c => F(c.Report.BitWidths.First(r => r.Label == row.Label).Metric))) + " |");
        foreach (var row in first.StepSizes.Skip(1))
            sb.AppendLine($"| {first.PerturbationBits}-bit, {row.Label} (`{row.Quantizer}`) | " + string.Join(" | ", columns.Select(c => F(c.Report.StepSizes.First(r => r.Label == row.Label).Metric))) + " |");
        sb.AppendLine("| mean kurtosis of the recurrent weights | " + string.Join(" | ", columns.Select(c => F(c.Report.Weights.Where(w => w.Name.StartsWith("layers.", StringComparison.Ordinal)).Average(w => w.Kurtosis)))) + " |");
        sb.AppendLine("| 2-bit BPC / float BPC | " + string.Join(" | ", columns.Select(c => F(c.Report.AtBits(2)!.Metric / c.Report.Float.Metric))) + " |");
        sb.AppendLine();
        sb.AppendLine("Weight and gate statistics of the KURE model:");
        sb.AppendLine();
        sb.Append(columns[^1].Report.ToMarkdown(3).Split("### Weight kurtosis", 2) is { Length: 2 } parts ? "### Weight kurtosis" + parts[1] : "");
        return sb.ToString();
    }

    private static string F(double value) => value.ToString("F3", CultureInfo.InvariantCulture);
}
