using System.CommandLine;
using System.Diagnostics;
using System.Text;
using Spectre.Console;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized.Samples.Commands;

/// <summary>
/// One recurrent layer of the quickstart's shape (1 x 256, input 64, batch 32 x 100 steps; <c>--hidden</c> changes the
/// width), forward and backward: the float layer on the cell loop and the cell loop's normalized TWN configurations
/// alternating with the fused float kernel repetition by repetition in one process, so the VM's drift between minutes and the
/// fused kernel's warm-up hit every row alike: per row the median time and the median over the repetitions of the fused
/// layer's time over the row's; <c>--evaluation</c> times the forward alone under no_grad instead. Writes the
/// <c>bench:layer</c> section of docs/benchmarks.md (<c>bench:layer-hN</c> for another width N, <c>-eval</c> after it in
/// evaluation).
/// </summary>
internal static class LayerBenchCommand
{
    private const int Steps = 100, Batch = 32, Input = 64, QuickstartHidden = 256;

    // The first row, the baseline, always runs libtorch's fused kernel (ForceFusedKernel: the GRU would run its sequence function
    // on a CPU with 512-bit vectors); "float, cell loop" is the same layer on the loop.
    private static readonly (string Name, string Weights, RecurrentNormalization Normalization)[] Configurations =
    {
        ("float", "none", RecurrentNormalization.None),
        ("float, cell loop", "none", RecurrentNormalization.None),
        ("twn + layer norm", "twn", RecurrentNormalization.Layer),
        ("twn + batch norm (per step)", "twn", RecurrentNormalization.BatchPerStep),
        ("twn + batch norm (shared)", "twn", RecurrentNormalization.BatchShared),
    };

    public static System.CommandLine.Command Create()
    {
        var repetitions = new Option<int>("--repetitions") { Description = "Timed repetitions of every row, alternating.", DefaultValueFactory = _ => 60 };
        var warmup = new Option<int>("--warmup") { Description = "Untimed repetitions of every row first.", DefaultValueFactory = _ => 10 };
        var cells = new Option<string>("--cells") { Description = "Comma-separated cells: lstm, gru.", DefaultValueFactory = _ => "lstm,gru" };
        var evaluation = new Option<bool>("--evaluation") { Description = "Time the forward alone, in evaluation mode under no_grad (scoring), instead of forward + backward in training mode (its own section)." };
        var hidden = new Option<int>("--hidden") { Description = "Hidden units of the layer (the quickstart's 256 writes the layer section, another width its own).", DefaultValueFactory = _ => QuickstartHidden };
        var output = new Option<FileInfo>("--out") { Description = "Markdown file to write (its layer section is replaced).", DefaultValueFactory = _ => new FileInfo("docs/benchmarks.md") };
        var command = new System.CommandLine.Command("layer-bench", "One quickstart-shaped layer, forward + backward: the cell loop (float; TWN, layer / batch norm) alternating with the fused float kernel.")
        {
            repetitions, warmup, cells, hidden, evaluation, output,
        };
        command.SetAction(parse => Run(parse.GetValue(repetitions), parse.GetValue(warmup), parse.GetValue(cells)!, parse.GetValue(hidden), parse.GetValue(evaluation), parse.GetValue(output)!));
        return command;
    }

    private static int Run(int repetitions, int warmup, string cells, int hidden, bool evaluation, FileInfo output)
    {
        if (repetitions < 1) throw new ArgumentException($"--repetitions must be at least 1; got {repetitions}.");
        if (warmup < 0) throw new ArgumentException($"--warmup must be at least 0; got {warmup}.");
        if (hidden < 1) throw new ArgumentException($"--hidden must be at least 1; got {hidden}.");
        var load = BenchmarkCommand.LoadAverage();
        var kinds = CellOption.ParseList(cells, "--cells");
        var rows = new List<Row>();
        foreach (var kind in kinds)
        {
            manual_seed(1);
            var layers = Configurations.Select((c, k) => Layer(kind, c.Weights, c.Normalization, hidden, cellLoop: k == 1, evaluation)).ToList();
            var times = layers.Select(_ => new List<double>()).ToList();
            using var input = randn(Steps, Batch, Input);
            using var h0 = zeros(Batch, hidden);
            for (int repetition = -warmup; repetition < repetitions; repetition++)
            {
                for (int k = 0; k < layers.Count; k++)
                {
                    var watch = Stopwatch.StartNew();
                    Pass(layers[k], input, h0, evaluation);
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
        string suffix = (hidden == QuickstartHidden ? "" : $"-h{hidden}") + (evaluation ? "-eval" : "");
        BenchmarkCommand.WriteSection(output, Render(rows, repetitions, warmup, hidden, evaluation, load), $"<!-- bench:layer{suffix} -->", $"<!-- /bench:layer{suffix} -->");
        AnsiConsole.MarkupLine($"Written to [blue]{Markup.Escape(output.FullName)}[/].");
        return 0;
    }

    private static QuantizedRecurrentCell Layer(RecurrentCellKind kind, string weights, RecurrentNormalization normalization, int hidden, bool cellLoop, bool evaluation)
    {
        var options = new QuantizedRecurrentOptions
        {
            Cell = kind, HiddenSize = hidden, Normalization = normalization, WeightQuantizer = QuantizerRegistry.Parse(weights),
        };
        QuantizedRecurrentCell layer = kind == RecurrentCellKind.Lstm ? new QuantizedLstmCell("layer", Input, options) : new QuantizedGruCell("layer", Input, options);
        layer.ForceCellLoop = cellLoop;
        layer.ForceFusedKernel = !cellLoop;
        layer.train(!evaluation);
        return layer;
    }

    /// <summary>One timed pass: forward + backward in training mode, or the forward alone under no_grad in evaluation.</summary>
    private static void Pass(QuantizedRecurrentCell layer, Tensor input, Tensor h0, bool evaluation)
    {
        using var scope = NewDisposeScope();
        if (evaluation)
        {
            using var noGrad = no_grad();
            layer.Forward(input, h0, layer.HasCellState ? h0 : null);
            return;
        }
        var x = input.detach().requires_grad_(true);
        var (output, _, _) = layer.Forward(x, h0, layer.HasCellState ? h0 : null);
        output.sum().backward();
        layer.zero_grad();
    }

    private static string Render(List<Row> rows, int repetitions, int warmup, int hidden, bool evaluation, string? load)
    {
        var sb = new StringBuilder();
        sb.AppendLine($"## One layer, cell loop vs fused kernel ({(evaluation ? "forward in evaluation" : "forward + backward")}, {(hidden == QuickstartHidden ? "quickstart shape" : $"hidden {hidden}")})");
        sb.AppendLine();
        sb.AppendLine($"One recurrent layer 1 x {hidden}, input {Input}, batch {Batch} x {Steps} steps, " +
                      (evaluation ? "evaluation mode under no_grad, the forward alone" : "training mode, forward and the backward of the output's sum") + $"; the rows of a cell alternate repetition by repetition in one process ({warmup} untimed, then {repetitions} timed " +
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
