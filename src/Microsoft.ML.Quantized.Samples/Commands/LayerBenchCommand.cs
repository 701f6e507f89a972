using System.CommandLine;
using System.Diagnostics;
using System.Text;
using Spectre.Console;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized.Samples.Commands;

/// <summary>
/// One recurrent layer of the quickstart's shape (1 x 256, input 64, batch 32 x 100 steps), forward and backward, the cell
/// loop's normalized TWN configurations alternating with the fused float kernel repetition by repetition in one process, so
/// the VM's drift between minutes and the fused kernel's warm-up hit every row alike: per row the median time and the median
/// over the repetitions of the fused layer's time over the row's. Writes the <c>bench:layer</c> section of docs/benchmarks.md.
/// </summary>
internal static class LayerBenchCommand
{
    private const string SectionStart = "<!-- bench:layer -->";
    private const string SectionEnd = "<!-- /bench:layer -->";
    private const int Steps = 100, Batch = 32, Input = 64, Hidden = 256;

    private static readonly (string Name, string Weights, RecurrentNormalization Normalization)[] Configurations =
    {
        ("float", "none", RecurrentNormalization.None),
        ("twn + layer norm", "twn", RecurrentNormalization.Layer),
        ("twn + batch norm (per step)", "twn", RecurrentNormalization.BatchPerStep),
        ("twn + batch norm (shared)", "twn", RecurrentNormalization.BatchShared),
    };

    public static System.CommandLine.Command Create()
    {
        var repetitions = new Option<int>("--repetitions") { Description = "Timed repetitions of every row, alternating.", DefaultValueFactory = _ => 60 };
        var warmup = new Option<int>("--warmup") { Description = "Untimed repetitions of every row first.", DefaultValueFactory = _ => 10 };
        var cells = new Option<string>("--cells") { Description = "Comma-separated cells: lstm, gru.", DefaultValueFactory = _ => "lstm,gru" };
        var output = new Option<FileInfo>("--out") { Description = "Markdown file to write (its layer section is replaced).", DefaultValueFactory = _ => new FileInfo("docs/benchmarks.md") };
        var command = new System.CommandLine.Command("layer-bench", "One quickstart-shaped layer, forward + backward: the cell loop (TWN, layer / batch norm) alternating with the fused float kernel.")
        {
            repetitions, warmup, cells, output,
        };
        command.SetAction(parse => Run(parse.GetValue(repetitions), parse.GetValue(warmup), parse.GetValue(cells)!, parse.GetValue(output)!));
        return command;
    }

    private static int Run(int repetitions, int warmup, string cells, FileInfo output)
    {
        if (repetitions < 1) throw new ArgumentException($"--repetitions must be at least 1; got {repetitions}.");
        if (warmup < 0) throw new ArgumentException($"--warmup must be at least 0; got {warmup}.");
        var load = BenchmarkCommand.LoadAverage();
        var kinds = cells.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(c => c switch
        {
            "lstm" => RecurrentCellKind.Lstm,
            "gru" => RecurrentCellKind.Gru,
            _ => throw new ArgumentException($"--cells: unknown cell '{c}' (lstm, gru)."),
        }).ToList();
        var rows = new List<Row>();
        foreach (var kind in kinds)
        {
            manual_seed(1);
            var layers = Configurations.Select(c => Layer(kind, c.Weights, c.Normalization)).ToList();
            var times = layers.Select(_ => new List<double>()).ToList();
            using var input = randn(Steps, Batch, Input);
            using var h0 = zeros(Batch, Hidden);
            for (int repetition = -warmup; repetition < repetitions; repetition++)
            {
                for (int k = 0; k < layers.Count; k++)
                {
                    var watch = Stopwatch.StartNew();
                    ForwardBackward(layers[k], input, h0);
                    if (repetition >= 0) times[k].Add(watch.Elapsed.TotalMilliseconds);
                }
            }
            for (int k = 0; k < layers.Count; k++)
            {
                var ratios = times[k].Select((time, i) => times[0][i] / time).ToList();
                rows.Add(new Row(kind, Configurations[k].Name, BenchmarkCommand.Median(times[k]), times[k].Min(), BenchmarkCommand.Median(ratios), layers[k].UsesFusedKernel));
                AnsiConsole.MarkupLine($"{kind} {Markup.Escape(Configurations[k].Name)}: {rows[^1].MedianMs:F1} ms, {rows[^1].Ratio:F3}x");
                layers[k].Dispose();
            }
        }
        BenchmarkCommand.WriteSection(output, Render(rows, repetitions, warmup, load), SectionStart, SectionEnd);
        AnsiConsole.MarkupLine($"Written to [blue]{Markup.Escape(output.FullName)}[/].");
        return 0;
    }

    private static QuantizedRecurrentCell Layer(RecurrentCellKind kind, string weights, RecurrentNormalization normalization)
    {
        var options = new QuantizedRecurrentOptions
        {
            Cell = kind, HiddenSize = Hidden, Normalization = normalization, WeightQuantizer = QuantizerRegistry.Parse(weights),
        };
        QuantizedRecurrentCell layer = kind == RecurrentCellKind.Lstm ? new QuantizedLstmCell("layer", Input, options) : new QuantizedGruCell("layer", Input, options);
        layer.train();
        return layer;
    }

    private static void ForwardBackward(QuantizedRecurrentCell layer, Tensor input, Tensor h0)
    {
        using var scope = NewDisposeScope();
        var x = input.detach().requires_grad_(true);
        var (output, _, _) = layer.Forward(x, h0, layer.HasCellState ? h0 : null);
        output.sum().backward();
        layer.zero_grad();
    }

    private static string Render(List<Row> rows, int repetitions, int warmup, string? load)
    {
        var sb = new StringBuilder();
        sb.AppendLine("## One layer, cell loop vs fused kernel (forward + backward, quickstart shape)");
        sb.AppendLine();
        sb.AppendLine($"One recurrent layer 1 x {Hidden}, input {Input}, batch {Batch} x {Steps} steps, training mode, forward and the backward of the " +
                      $"output's sum; the rows of a cell alternate repetition by repetition in one process ({warmup} untimed, then {repetitions} timed " +
                      $"each). Time: the median (fastest in brackets); ratio: the median over the repetitions of the float row's time (fused kernel) " +
                      $"over the row's in the same repetition. {BenchmarkCommand.Provenance(load)}");
        sb.AppendLine();
        sb.AppendLine("| cell | configuration | ms | vs float fused | kernel |");
        sb.AppendLine("|---|---|---:|---:|---|");
        foreach (var row in rows)
            sb.AppendLine($"| {row.Cell} | {row.Configuration} | {row.MedianMs:F1} ({row.FastestMs:F1}) | {row.Ratio:F2}x | {(row.Fused ? "fused" : "loop")} |");
        return sb.ToString();
    }

    private sealed record Row(RecurrentCellKind Cell, string Configuration, double MedianMs, double FastestMs, double Ratio, bool Fused);
}
