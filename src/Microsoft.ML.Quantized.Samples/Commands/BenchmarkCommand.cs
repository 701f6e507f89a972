using System.CommandLine;
using System.Text;
using Spectre.Console;

namespace Microsoft.ML.Quantized.Samples.Commands;

/// <summary>
/// Word-level LM benchmark on the Brown split (1 x 300, bptt 35, batch 20, SGD lr 20, clip 0.25, dropout 0.5):
/// float and every weight quantizer, each without and with layer norm, the same epochs for all. Writes
/// docs/benchmarks.md.
/// </summary>
internal static class BenchmarkCommand
{
    private const string SectionStart = "<!-- bench:word-lm -->";
    private const string SectionEnd = "<!-- /bench:word-lm -->";

    public static System.CommandLine.Command Create()
    {
        var data = new Option<DirectoryInfo>("--data") { Description = "Folder with *train.txt, *valid.txt, *test.txt (one sentence per line).", DefaultValueFactory = _ => new DirectoryInfo("data/brown") };
        var epochs = new Option<int>("--epochs") { Description = "Epochs for every configuration.", DefaultValueFactory = _ => 6 };
        var maxSteps = new Option<int>("--max-steps") { Description = "Cap on steps per epoch (0 = full epochs).", DefaultValueFactory = _ => 0 };
        var configs = new Option<string>("--configs") { Description = "Comma-separated weight quantizer names (registry names, e.g. none,bc,twn,alt2,uniform4).", DefaultValueFactory = _ => "none,twn,bc,bwn,ttq,alt2,uniform4" };
        var norms = new Option<string>("--norms") { Description = "Comma-separated normalizations per quantizer: none, layer, weight.", DefaultValueFactory = _ => "none,layer" };
        var output = new Option<FileInfo>("--out") { Description = "Markdown file to write (its word-LM section is replaced).", DefaultValueFactory = _ => new FileInfo("docs/benchmarks.md") };
        var command = new System.CommandLine.Command("bench", "Word-LM benchmark on the Brown split: every quantizer without and with layer norm.")
        {
            data, epochs, maxSteps, configs, norms, output,
        };
        command.SetAction(parse => Run(parse.GetValue(data)!, parse.GetValue(epochs), parse.GetValue(maxSteps),
            parse.GetValue(configs)!, parse.GetValue(norms)!, parse.GetValue(output)!));
        return command;
    }

    private static int Run(DirectoryInfo data, int epochs, int maxSteps, string configs, string norms, FileInfo output)
    {
        var load = BenchmarkCommand.LoadAverage();
        var (train, valid, test) = ReadSplit(data);
        var vocabulary = Vocabulary.FromWords(train, 10_001);
        AnsiConsole.MarkupLine($"Brown word LM: vocabulary {vocabulary.Count:N0}, {vocabulary.Encode(train).Length:N0} training tokens.");
        var training = new TrainingOptions
        {
            Epochs = epochs, MaxStepsPerEpoch = maxSteps, BatchSize = 20, SequenceLength = 35,
            Optimizer = OptimizerKind.Sgd, LearningRate = 20, LearningRateDecay = 4, GradientClipNorm = 0.25, Seed = 1,
        };
        var rows = new List<Row>();
        foreach (var quantizerName in OptionList.Split(configs))
        {
            foreach (var normName in OptionList.Split(norms))
            {
                var normalization = normName switch
                {
                    "none" => RecurrentNormalization.None,
                    "layer" => RecurrentNormalization.Layer,
                    "weight" => RecurrentNormalization.Weight,
                    _ => throw new ArgumentException($"--norms: unknown normalization '{normName}' (none, layer, weight)."),
                };
                var options = new LanguageModelOptions
                {
                    EmbeddingDropout = 0.5,
                    Recurrent = new QuantizedRecurrentOptions
                    {
                        HiddenSize = 300, Dropout = 0.5, Normalization = normalization,
                        WeightQuantizer = QuantizerRegistry.Parse(quantizerName),
                    },
                };
                var label = $"{quantizerName} + {normName} norm";
                using var model = ConsoleProgress.Run(label, progress => QuantizedLanguageModel.Train(vocabulary, train, valid, options, training, progress));
                var evaluation = model.Evaluate(test);
                var size = model.SizeReport();
                rows.Add(new Row(quantizerName, normName, evaluation.Perplexity, model.History.Average(h => h.UnitsPerSecond), size, model.UsesFusedKernel));
                AnsiConsole.MarkupLine($"{Markup.Escape(label)}: test perplexity {evaluation.Perplexity:F1}");
                WriteSection(output, Render(rows, epochs, maxSteps, load)); // after every configuration: a long run keeps what it finished
            }
        }
        var markdown = Render(rows, epochs, maxSteps, load);
        AnsiConsole.WriteLine(markdown);
        AnsiConsole.MarkupLine($"Written to [blue]{Markup.Escape(output.FullName)}[/].");
        return 0;
    }

    private static string Render(List<Row> rows, int epochs, int maxSteps, string? load)
    {
        var floatRow = rows.FirstOrDefault(r => r.Quantizer == "none" && r.Normalization == "none") ?? rows.FirstOrDefault(r => r.Quantizer == "none");
        var sb = new StringBuilder();
        sb.AppendLine("## Word-level LM on the Brown split");
        sb.AppendLine();
        sb.AppendLine($"1 layer x 300 LSTM, embedding 300, bptt 35, batch 20, SGD lr 20 (/4 on plateau), clip 0.25, dropout 0.5, " +
                      $"{epochs} epoch(s){(maxSteps > 0 ? $" of at most {maxSteps} steps" : "")} for every configuration. {Provenance(load)}");
        sb.AppendLine();
        sb.AppendLine("| weights | norm | test ppl | ratio to float | train tok/s | vs float speed | bits/weight (LSTM) | packed | float32 | kernel |");
        sb.AppendLine("|---|---|---:|---:|---:|---:|---:|---:|---:|---|");
        foreach (var r in rows)
        {
            var ratio = floatRow is null ? "" : $"{r.Perplexity / floatRow.Perplexity:F3}";
            var speed = floatRow is null ? "" : $"{r.TokensPerSecond / floatRow.TokensPerSecond:P0}";
            sb.AppendLine($"| {r.Quantizer} | {r.Normalization} | {r.Perplexity:F1} | {ratio} | {r.TokensPerSecond:N0} | {speed} | " +
                          $"{(r.Size.QuantizedParameterCount > 0 ? r.Size.BitsPerQuantizedWeight.ToString("F2") : "32")} | {QuickstartCommand.Bytes(r.Size.PackedBytes)} | {QuickstartCommand.Bytes(r.Size.Float32Bytes)} | {(r.Fused ? "fused" : "loop")} |");
        }
        return sb.ToString();
    }

    /// <summary>The texts of the <c>*train.txt</c>, <c>*valid.txt</c> and <c>*test.txt</c> files in <paramref name="data"/> (the prepared Brown split).</summary>
    /// <exception cref="DirectoryNotFoundException"><paramref name="data"/> does not exist (the message says how to fetch it).</exception>
    /// <exception cref="FileNotFoundException">One of the three files is missing.</exception>
    internal static (string Train, string Valid, string Test) ReadSplit(DirectoryInfo data)
    {
        string Find(string part) => data.Exists
            ? data.GetFiles($"*{part}.txt").Select(f => f.FullName).FirstOrDefault()
              ?? throw new FileNotFoundException($"No *{part}.txt in '{data.FullName}'.")
            : throw new DirectoryNotFoundException($"Data folder '{data.FullName}' does not exist: run build/fetch-data.sh first, or pass --data DIR.");
        return (File.ReadAllText(Find("train")), File.ReadAllText(Find("valid")), File.ReadAllText(Find("test")));
    }

    /// <summary>Writes <paramref name="markdown"/> between the section markers of <paramref name="output"/>, replacing what was there.</summary>
    internal static void WriteSection(FileInfo output, string markdown, string sectionStart = SectionStart, string sectionEnd = SectionEnd)
    {
        output.Directory?.Create();
        var existing = output.Exists ? File.ReadAllText(output.FullName) : "# Benchmarks\n\nEvery figure here comes from a run of the command named in its section, on the machine named there.\n\n";
        var section = $"{sectionStart}\n{markdown}{sectionEnd}\n";
        int start = existing.IndexOf(sectionStart, StringComparison.Ordinal);
        int end = existing.IndexOf(sectionEnd, StringComparison.Ordinal);
        // What follows the end marker's own line break stays as it was (a blank line after the section included).
        string after = start >= 0 && end > start ? existing[(end + sectionEnd.Length)..] : "";
        if (after.StartsWith('\n')) after = after[1..];
        var updated = start >= 0 && end > start
            ? existing[..start] + section + after
            : existing.TrimEnd('\n') + "\n\n" + section;
        File.WriteAllText(output.FullName, updated);
    }

    /// <summary>The median of <paramref name="values"/> (the mean of the middle two for an even count).</summary>
    internal static double Median(IEnumerable<double> values)
    {
        var sorted = values.OrderBy(v => v).ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }

    /// <summary>The 1-minute load average (Linux), or null; read when a run starts, so its section says whether the cores were shared.</summary>
    internal static string? LoadAverage() => File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Split(' ')[0] : null;

    /// <summary>
    /// "Machine: ..., 1-minute load average L at the start. Generated by `dotnet run ... -- ARGS` on DATE." with this process's
    /// own arguments, so a generated section names the machine, how busy it was and the exact command that wrote it.
    /// </summary>
    internal static string Provenance(string? load) =>
        $"Machine: {MachineDescription()}{(load is null ? "" : $", 1-minute load average {load} at the start")}. " +
        $"Generated by `dotnet run --project src/Microsoft.ML.Quantized.Samples -c Release -- {string.Join(' ', Environment.GetCommandLineArgs().Skip(1))}` on {DateTime.UtcNow:yyyy-MM-dd}.";

    internal static string MachineDescription()
    {
        var cpu = File.Exists("/proc/cpuinfo")
            ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim()
            : null;
        return $"{Environment.ProcessorCount} cores{(cpu is null ? "" : $" ({cpu})")}, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}, CPU libtorch";
    }

    private sealed record Row(string Quantizer, string Normalization, double Perplexity, double TokensPerSecond, ModelSizeReport Size, bool Fused);
}
