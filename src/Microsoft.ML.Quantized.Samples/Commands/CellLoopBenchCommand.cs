using System.CommandLine;
using System.Text;
using Spectre.Console;

namespace Microsoft.ML.Quantized.Samples.Commands;

/// <summary>
/// Training throughput of the cell loop against the fused kernel on the quickstart's shape (Moby Dick character LM,
/// 1 x 256, embedding 64, batch 32 x 100 characters, Adam): for the LSTM and the GRU, float and TWN on the kernel the
/// library chooses (the fused one, except the GRU's where its cell loop is the faster), then TWN with layer, batch (per step)
/// and shared batch normalization, and with HitNet's BTQ or 4-bit uniform activations, all on the cell loop. Writes the <c>bench:cell-loop</c> section of docs/benchmarks.md.
/// </summary>
internal static class CellLoopBenchCommand
{
    private const string SectionStart = "<!-- bench:cell-loop -->";
    private const string SectionEnd = "<!-- /bench:cell-loop -->";

    private static readonly (string Name, string Weights, string Activations, RecurrentNormalization Normalization)[] Configurations =
    {
        ("float", "none", "none", RecurrentNormalization.None),
        ("twn", "twn", "none", RecurrentNormalization.None),
        ("twn + layer norm", "twn", "none", RecurrentNormalization.Layer),
        ("twn + batch norm (per step)", "twn", "none", RecurrentNormalization.BatchPerStep),
        ("twn + batch norm (shared)", "twn", "none", RecurrentNormalization.BatchShared),
        ("twn + btq activations + layer norm", "twn", "btq", RecurrentNormalization.Layer),
        ("twn + uniform4 activations + layer norm", "twn", "uniform4", RecurrentNormalization.Layer),
        ("twn + uniform4-lsq activations + layer norm", "twn", "uniform4-lsq", RecurrentNormalization.Layer),
    };

    public static System.CommandLine.Command Create()
    {
        var steps = new Option<int>("--steps") { Description = "Timed training steps per configuration (32 x 100 characters each).", DefaultValueFactory = _ => 40 };
        var rounds = new Option<int>("--rounds")
        {
            Description = "Rounds over all configurations; each row reports the median of its rounds and each ratio the median of the same round's ratios (this VM's speed drifts between minutes).",
            DefaultValueFactory = _ => 3,
        };
        var cells = new Option<string>("--cells") { Description = "Comma-separated cells: lstm, gru.", DefaultValueFactory = _ => "lstm,gru" };
        var output = new Option<FileInfo>("--out") { Description = "Markdown file to write (its cell-loop section is replaced).", DefaultValueFactory = _ => new FileInfo("docs/benchmarks.md") };
        var command = new System.CommandLine.Command("loop-bench", "Training throughput of the cell loop (in-cell normalization, activation quantizers) vs the fused kernel, quickstart shape.")
        {
            steps, rounds, cells, output,
        };
        command.SetAction(parse => Run(parse.GetValue(steps), parse.GetValue(rounds), parse.GetValue(cells)!, parse.GetValue(output)!));
        return command;
    }

    private static int Run(int steps, int rounds, string cells, FileInfo output)
    {
        if (steps < 1) throw new ArgumentException($"--steps must be at least 1; got {steps}.");
        if (rounds < 1) throw new ArgumentException($"--rounds must be at least 1; got {rounds}.");
        var load = BenchmarkCommand.LoadAverage();
        var text = EmbeddedCorpus.MobyDick();
        var (train, validation, _) = EmbeddedCorpus.Split(text);
        var vocabulary = Vocabulary.FromCharacters(text);
        var shortValidation = validation[..Math.Min(validation.Length, 10_000)];
        var cellKinds = CellOption.ParseList(cells, "--cells");

        // One untimed run first: TorchScript compilation and libtorch's first-call costs stay out of every timed row.
        Train(vocabulary, train, shortValidation, cellKinds[0], Configurations[0], 3, null).Dispose();
        var rows = new List<Row>();
        for (int round = 1; round <= rounds; round++)
        {
            foreach (var cell in cellKinds)
            {
                foreach (var configuration in Configurations)
                {
                    using var model = ConsoleProgress.Run($"round {round}: {cell} {configuration.Name}", progress => Train(vocabulary, train, shortValidation, cell, configuration, steps, progress));
                    rows.Add(new Row(round, cell, configuration.Name, model.History[0].UnitsPerSecond, model.UsesFusedKernel));
                    AnsiConsole.MarkupLine($"round {round}: {cell} {Markup.Escape(configuration.Name)}: {rows[^1].TokensPerSecond:N0} tok/s");
                }
            }
            BenchmarkCommand.WriteSection(output, Render(rows, steps, load), SectionStart, SectionEnd);
        }
        AnsiConsole.WriteLine(Render(rows, steps, load));
        AnsiConsole.MarkupLine($"Written to [blue]{Markup.Escape(output.FullName)}[/].");
        return 0;
    }

    private static QuantizedLanguageModel Train(Vocabulary vocabulary, string train, string validation, RecurrentCellKind cell,
        (string Name, string Weights, string Activations, RecurrentNormalization Normalization) configuration, int steps,
        IProgress<TrainingProgress>? progress)
    {
        var options = new LanguageModelOptions
        {
            EmbeddingSize = 64,
            Recurrent = new QuantizedRecurrentOptions
            {
                Cell = cell, HiddenSize = 256, Normalization = configuration.Normalization,
                WeightQuantizer = QuantizerRegistry.Parse(configuration.Weights),
                ActivationQuantizer = QuantizerRegistry.Parse(configuration.Activations),
            },
        };
        var training = new TrainingOptions
        {
            Epochs = 1, MaxStepsPerEpoch = steps, BatchSize = 32, SequenceLength = 100,
            Optimizer = OptimizerKind.Adam, LearningRate = 3e-3, GradientClipNorm = 1.0, Seed = 1,
        };
        return QuantizedLanguageModel.Train(vocabulary, train, validation, options, training, progress);
    }

    private static string Render(List<Row> rows, int steps, string? load)
    {
        int rounds = rows.Max(r => r.Round);
        var sb = new StringBuilder();
        sb.AppendLine("## Cell loop vs fused kernel (training throughput, quickstart shape)");
        sb.AppendLine();
        sb.AppendLine($"Moby Dick character LM, 1 layer x 256, embedding 64, batch 32 x 100 characters, Adam 3e-3, clip 1.0; {steps} timed training " +
                      $"steps per row after an untimed warm-up run, {rounds} round(s) over all rows. Tokens/s: the median of the rounds (min-max " +
                      $"in brackets); ratio: the median over the rounds of the row's speed over the same cell's float row in the same round; kernel: " +
                      $"what the library chose (the fused kernel for weight-only quantization, except the GRU's on a CPU with 512-bit vectors, " +
                      $"where its cell loop is the faster). {BenchmarkCommand.Provenance(load)}");
        sb.AppendLine();
        sb.AppendLine("| cell | configuration | train tok/s | vs float | kernel |");
        sb.AppendLine("|---|---|---:|---:|---|");
        foreach (var group in rows.GroupBy(r => (r.Cell, r.Configuration)))
        {
            var speeds = group.Select(r => r.TokensPerSecond).ToList();
            var ratios = group.Select(r => rows.FirstOrDefault(b => b.Round == r.Round && b.Cell == r.Cell && b.Configuration == Configurations[0].Name) is { } baseline
                ? r.TokensPerSecond / baseline.TokensPerSecond : double.NaN).Where(double.IsFinite).ToList();
            var spread = speeds.Count > 1 ? $" ({speeds.Min():N0}-{speeds.Max():N0})" : "";
            sb.AppendLine($"| {group.Key.Cell} | {group.Key.Configuration} | {BenchmarkCommand.Median(speeds):N0}{spread} | {(ratios.Count > 0 ? $"{BenchmarkCommand.Median(ratios):F2}x" : "")} | {(group.First().Fused ? "fused" : "loop")} |");
        }
        return sb.ToString();
    }

    private sealed record Row(int Round, RecurrentCellKind Cell, string Configuration, double TokensPerSecond, bool Fused);
}
