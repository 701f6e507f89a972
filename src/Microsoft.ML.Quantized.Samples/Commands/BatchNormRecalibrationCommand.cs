using System.CommandLine;
using System.Globalization;
using System.Text;
using Spectre.Console;

namespace Microsoft.ML.Quantized.Samples.Commands;

/// <summary>
/// <c>bn-recalibrate</c>: whether per-step batch normalization's running statistics, gathered while a stochastic activation
/// quantizer (HitNet's BTQ) draws at random, explain why BTQ trains worse with batch norm than without it: trains the study's
/// character-LM recipe for each configuration, scores the test text, re-estimates the running statistics under the
/// quantizers' evaluation rule (<see cref="QuantizedLanguageModel.RecalibrateBatchNorm"/>) and scores again. Writes its
/// section of docs/reproduction.md.
/// </summary>
internal static class BatchNormRecalibrationCommand
{
    private const string SectionStart = "<!-- bench:bn-recalibration -->";
    private const string SectionEnd = "<!-- /bench:bn-recalibration -->";

    public static System.CommandLine.Command Create()
    {
        var activations = new Option<string>("--activations") { Description = "Comma-separated activation quantizers (registry names; none = float, the control).", DefaultValueFactory = _ => "btq,none" };
        var epochs = new Option<int>("--epochs") { Description = "Whole epochs of the study's character-LM recipe (the best validation epoch is kept).", DefaultValueFactory = _ => 5 };
        var maxSteps = new Option<int>("--max-steps") { Description = "Cap on steps per epoch (0 = whole epochs; anything else is a smoke run).", DefaultValueFactory = _ => 0 };
        var hidden = new Option<int>("--hidden") { Description = "Hidden units.", DefaultValueFactory = _ => 256 };
        var windows = new Option<int>("--windows") { Description = "Training windows (32 x 100 characters) the statistics are re-estimated over; 0 = one pass over the training text.", DefaultValueFactory = _ => 0 };
        var output = new Option<FileInfo>("--out") { Description = "Markdown file whose bn-recalibration section is rewritten.", DefaultValueFactory = _ => new FileInfo("docs/reproduction.md") };
        var command = new System.CommandLine.Command("bn-recalibrate",
            "Per-step batch norm's running statistics re-estimated under the activation quantizers' evaluation rule (HitNet's BTQ), test BPC before and after.")
        {
            activations, epochs, maxSteps, hidden, windows, output,
        };
        command.SetAction(parse => Run(parse.GetValue(activations)!, parse.GetValue(epochs), parse.GetValue(maxSteps), parse.GetValue(hidden), parse.GetValue(windows), parse.GetValue(output)!));
        return command;
    }

    private static int Run(string activations, int epochs, int maxSteps, int hidden, int windows, FileInfo output)
    {
        if (epochs < 1) throw new ArgumentException($"--epochs must be at least 1; got {epochs}.");
        if (windows < 0) throw new ArgumentException($"--windows must be 0 (one pass) or more; got {windows}.");
        var quantizers = OptionList.Split(activations)
            .Select(name => (Name: name, Options: QuantizerRegistry.Parse(name))).ToList();
        var load = BenchmarkCommand.LoadAverage();
        var text = EmbeddedCorpus.MobyDick();
        var (train, validation, test) = EmbeddedCorpus.Split(text);
        var vocabulary = Vocabulary.FromCharacters(text);
        var trainingTokens = vocabulary.Encode(train, skipUnknownCharacters: true);
        var rows = new List<(string Activations, double Before, double After, int Windows, double Seconds)>();
        foreach (var (name, quantizer) in quantizers)
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var options = new LanguageModelOptions
            {
                EmbeddingSize = 64,
                Recurrent = new QuantizedRecurrentOptions { HiddenSize = hidden, Normalization = RecurrentNormalization.BatchPerStep, ActivationQuantizer = quantizer },
            };
            var training = new TrainingOptions
            {
                Epochs = epochs, MaxStepsPerEpoch = maxSteps, BatchSize = 32, SequenceLength = 100,
                Optimizer = OptimizerKind.Adam, LearningRate = 3e-3, LearningRateDecay = 2, GradientClipNorm = 1.0, Seed = 1,
            };
            using var model = ConsoleProgress.Run($"{name} activations, batch norm", progress => QuantizedLanguageModel.Train(vocabulary, train, validation, options, training, progress));
            double before = model.Evaluate(test).CrossEntropy / Math.Log(2);
            int passWindows = TokenStreamBatcher.WindowsPerPass(trainingTokens.Length, training.BatchSize, training.SequenceLength);
            int used = windows == 0 ? passWindows : Math.Min(windows, passWindows);
            model.RecalibrateBatchNorm(trainingTokens, used, training.BatchSize);
            double after = model.Evaluate(test).CrossEntropy / Math.Log(2);
            rows.Add((name, before, after, used, clock.Elapsed.TotalSeconds));
            AnsiConsole.MarkupLine(Markup.Escape(FormattableString.Invariant($"{name} activations + batch norm: test BPC {before:F3} as trained, {after:F3} after re-estimating the statistics over {used} windows")));
            BenchmarkCommand.WriteSection(output, Render(rows, epochs, maxSteps, hidden, load), SectionStart, SectionEnd);
        }
        AnsiConsole.MarkupLine($"Written to [blue]{Markup.Escape(output.FullName)}[/].");
        return 0;
    }

    private static string Render(List<(string Activations, double Before, double After, int Windows, double Seconds)> rows, int epochs, int maxSteps, int hidden, string? load)
    {
        var sb = new StringBuilder();
        sb.AppendLine("## HitNet: BTQ under batch norm, running statistics re-estimated under the evaluation rule");
        sb.AppendLine();
        sb.AppendLine(FormattableString.Invariant(
            $"Moby Dick character LM, LSTM 1 x {hidden}, float weights, per-step batch norm, the study's recipe ({epochs} epoch(s){(maxSteps > 0 ? $" of at most {maxSteps} steps, not converged" : "")}, ") +
            "best validation epoch kept); test bits per character as trained, then after re-estimating every batch norm's running statistics " +
            "over the training windows with the quantizers in evaluation mode (BTQ thresholds at 0.5 instead of drawing; momentum 0.1 as in " +
            $"training). {BenchmarkCommand.Provenance(load)}");
        sb.AppendLine();
        sb.AppendLine("| activations | test BPC as trained | after re-estimation | windows | seconds |");
        sb.AppendLine("|---|---:|---:|---:|---:|");
        foreach (var r in rows)
            sb.AppendLine(FormattableString.Invariant($"| {r.Activations} | {r.Before:F3} | {r.After:F3} | {r.Windows} | {r.Seconds:F0} |"));
        return sb.ToString();
    }
}
