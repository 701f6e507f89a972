using System.CommandLine;
using System.Globalization;
using System.Text;
using Microsoft.ML.Quantized.Samples.Reproduction;
using Spectre.Console;

namespace Microsoft.ML.Quantized.Samples.Commands;

/// <summary>
/// HitNet's question 6 (REPRODUCTION.md): memory for weights against activations at batch 1, the deployment case, and at
/// training batch sizes, on the character LM (embedded Moby Dick, embedding 64, LSTM 1 x H, 100-character sequences). Per
/// configuration: the packed weights, the bytes the packed engine's scorer allocates for one stream's state and scratch
/// (measured with the runtime's allocation counter) and what it allocates per step, and the growth of this process's peak
/// resident memory while training a few steps at each batch size (weights, gradients, optimizer state and every
/// activation kept for the backward pass). Writes the <c>memory</c> section of docs/reproduction.md.
/// </summary>
internal static class MemoryCommand
{
    private const string SectionStart = "<!-- bench:memory -->";
    private const string SectionEnd = "<!-- /bench:memory -->";
    private const int SequenceLength = 100;

    public static System.CommandLine.Command Create()
    {
        var configs = new Option<string>("--configs") { Description = "Comma-separated weight quantizer names (registry names).", DefaultValueFactory = _ => "none,ttq" };
        var activations = new Option<string>("--activations") { Description = "Comma-separated activation quantizer names (none = float activations).", DefaultValueFactory = _ => "none,btq" };
        var norms = new Option<string>("--norms") { Description = "Comma-separated normalizations: none, weight, layer, batch, batch-shared.", DefaultValueFactory = _ => "none,layer" };
        var batches = new Option<string>("--batches") { Description = "Comma-separated training batch sizes to measure.", DefaultValueFactory = _ => "1,32,128" };
        var hidden = new Option<int>("--hidden") { Description = "LSTM hidden units.", DefaultValueFactory = _ => 256 };
        var steps = new Option<int>("--steps") { Description = "Training steps per measurement (the peak is reached in the first).", DefaultValueFactory = _ => 2 };
        var output = new Option<FileInfo>("--out") { Description = "Markdown file whose memory section is rewritten.", DefaultValueFactory = _ => new FileInfo("docs/reproduction.md") };
        var command = new System.CommandLine.Command("memory",
            "HitNet Q6: memory for weights vs activations, at batch 1 in the packed engine and at training batch sizes (character LM).")
        {
            configs, activations, norms, batches, hidden, steps, output,
        };
        command.SetAction(parse => Run(StudyCommand.Grid(parse.GetValue(configs)!, parse.GetValue(activations)!, parse.GetValue(norms)!, "1"),
            ParseBatches(parse.GetValue(batches)!), parse.GetValue(hidden), parse.GetValue(steps), parse.GetValue(output)!));
        return command;
    }

    /// <summary>One configuration's figures, in bytes; <c>Training</c> is the peak growth at each batch size (null where training diverged or peaks cannot be measured).</summary>
    private sealed record Row(StudyCommand.StudyConfiguration Configuration, long PackedBytes, long Float32Bytes, long ScorerBytes, long BytesPerStep, long?[] Training);

    private static int[] ParseBatches(string text)
    {
        var batches = OptionList.Split(text)
            .Select(p => int.TryParse(p, NumberStyles.Integer, CultureInfo.InvariantCulture, out var b) && b >= 1
                ? b
                : throw new ArgumentException($"--batches holds '{p}': each must be a whole number of sequences, at least 1, e.g. 1,32,128."))
            .Distinct().Order().ToArray();
        return batches.Length > 0 ? batches : throw new ArgumentException("--batches needs at least one batch size, e.g. 1,32,128.");
    }

    private static int Run(List<StudyCommand.StudyConfiguration> grid, int[] batches, int hidden, int steps, FileInfo output)
    {
        if (hidden < 1) throw new ArgumentException($"--hidden must be at least 1; got {hidden}.");
        if (steps < 1) throw new ArgumentException($"--steps must be at least 1; got {steps}.");
        bool peaks = ResidentMemory.CanResetPeak();
        if (!peaks) AnsiConsole.MarkupLine("[yellow]This system cannot reset the peak resident set (Linux's /proc/self/clear_refs): the training columns will read n/a.[/]");
        var load = BenchmarkCommand.LoadAverage();
        var text = EmbeddedCorpus.MobyDick();
        var vocabulary = Vocabulary.FromCharacters(text);
        // Every stream of the largest batch needs steps x 100 characters and one more target.
        var train = text[..Math.Min(text.Length, batches[^1] * (steps * SequenceLength + 2))];
        TrainingOptions Training(int batch, int stepCount) => new()
        {
            Epochs = 1, MaxStepsPerEpoch = stepCount, BatchSize = batch, SequenceLength = SequenceLength,
            Optimizer = OptimizerKind.Adam, LearningRate = 3e-3, GradientClipNorm = 1.0, Seed = 1,
        };
        LanguageModelOptions Model(StudyCommand.StudyConfiguration c) => new() { EmbeddingSize = 64, Recurrent = c.Recurrent(RecurrentCellKind.Lstm, 1, hidden) };

        // Libtorch's thread pools and first allocations come with the first training: make them before measuring anything.
        QuantizedLanguageModel.Train(vocabulary, train, null, Model(grid[0]), Training(batches[0], 1)).Dispose();
        var rows = new List<Row>();
        foreach (var configuration in grid)
        {
            var label = $"{configuration.Weights} weights, {configuration.Activations} activations, {configuration.Normalization} norm";
            var training = new long?[batches.Length];
            long packedBytes = 0, float32Bytes = 0, scorerBytes = 0, bytesPerStep = 0;
            for (int b = 0; b < batches.Length; b++)
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
                GC.Collect();
                if (peaks) ResidentMemory.ResetPeak();
                long before = peaks ? ResidentMemory.CurrentBytes : 0;
                try
                {
                    using var model = QuantizedLanguageModel.Train(vocabulary, train, null, Model(configuration), Training(batches[b], steps));
                    training[b] = peaks ? ResidentMemory.PeakBytes - before : null;
                    if (b == 0) (packedBytes, float32Bytes, scorerBytes, bytesPerStep) = Deployed(model, vocabulary.Encode(text[..1000], skipUnknownCharacters: true));
                }
                catch (TrainingDivergedException)
                {
                    // The cell reads "diverged".
                }
                AnsiConsole.MarkupLine($"{Markup.Escape(label)}, batch {batches[b]}: peak growth {Markup.Escape(TrainingCell(training[b], peaks))}");
            }
            rows.Add(new Row(configuration, packedBytes, float32Bytes, scorerBytes, bytesPerStep, training));
        }
        var markdown = Render(rows, batches, hidden, steps, load, peaks);
        AnsiConsole.WriteLine(markdown);
        BenchmarkCommand.WriteSection(output, markdown, SectionStart, SectionEnd);
        AnsiConsole.MarkupLine($"Written to [blue]{Markup.Escape(output.FullName)}[/].");
        return 0;
    }

    /// <summary>
    /// The packed model's bytes, the float32 bytes of the same parameters, what creating one scorer allocates, and what it
    /// allocates per step over a second pass through <paramref name="tokens"/> (0 when scoring reuses its buffers).
    /// </summary>
    private static (long Packed, long Float32, long Scorer, long PerStep) Deployed(QuantizedLanguageModel model, int[] tokens)
    {
        var size = model.SizeReport();
        var packed = model.Pack();
        long start = GC.GetAllocatedBytesForCurrentThread();
        var scorer = new LanguageModelScorer(packed.Network);
        long created = GC.GetAllocatedBytesForCurrentThread();
        var logits = new float[packed.Network.VocabularySize];
        foreach (var id in tokens) scorer.Step(id, logits); // the first pass compiles the kernels (the JIT allocates on this thread)
        scorer.Reset();
        long stepsStart = GC.GetAllocatedBytesForCurrentThread();
        foreach (var id in tokens) scorer.Step(id, logits);
        long perStep = (GC.GetAllocatedBytesForCurrentThread() - stepsStart) / tokens.Length;
        return (size.PackedBytes, size.Float32Bytes, created - start, perStep);
    }

    /// <summary>A training cell: the peak growth, "n/a" where peaks cannot be measured, "diverged" where training diverged.</summary>
    private static string TrainingCell(long? growth, bool peaks) => growth is { } g ? Mb(g) : peaks ? "diverged" : "n/a";

    private static string Render(List<Row> rows, int[] batches, int hidden, int steps, string? load, bool peaks)
    {
        var sb = new StringBuilder();
        sb.AppendLine($"## HitNet question 6: memory for weights and for activations, at batch 1 and in training (character LM, LSTM 1 x {hidden})");
        sb.AppendLine();
        sb.AppendLine($"Embedded Moby Dick, embedding 64, LSTM 1 x {hidden}, sequences of {SequenceLength} characters, Adam. **Packed weights**: the " +
                      "deployed model's bytes (codes, scales, float biases, embedding and decoder); **float32**: the same parameters at 4 bytes. " +
                      "**Scorer, batch 1**: what creating the packed engine's scorer for one stream allocates (its hidden and cell state, the " +
                      "gate scratch and the logits; .NET's allocation counter), and what each scored character allocates after that. " +
                      $"**Training**: the growth of this process's peak resident memory (Linux VmHWM, reset before each run) over {steps} Adam step(s) " +
                      $"of {SequenceLength} characters per sequence at each batch size: float32 weights, gradients, Adam's two moments and every " +
                      "activation kept for the backward pass, in libtorch's CPU allocator" +
                      (peaks ? "" : " (n/a: this system cannot reset the peak resident set, Linux's /proc/self/clear_refs)") +
                      "; MB = 10^6 bytes, KB = 10^3. " + BenchmarkCommand.Provenance(load));
        sb.AppendLine();
        sb.AppendLine("| weights | activations | norm | packed weights | float32 weights | scorer, batch 1 | scorer bytes per character | " +
                      string.Join(" | ", batches.Select(b => $"training, batch {b}")) + " |");
        sb.AppendLine("|---|---|---|---:|---:|---:|---:|" + string.Concat(batches.Select(_ => "---:|")));
        foreach (var r in rows)
        {
            var c = r.Configuration;
            sb.AppendLine($"| {c.Weights} | {c.Activations} | {c.Normalization} | {SweepCommand.Kb(r.PackedBytes)} | {SweepCommand.Kb(r.Float32Bytes)} | {SweepCommand.Kb(r.ScorerBytes)} | " +
                          $"{r.BytesPerStep.ToString(CultureInfo.InvariantCulture)} | " + string.Join(" | ", r.Training.Select(t => TrainingCell(t, peaks))) + " |");
        }
        return sb.ToString();
    }

    private static string Mb(long bytes) => (bytes / 1e6).ToString("0.0", CultureInfo.InvariantCulture) + " MB";
}
