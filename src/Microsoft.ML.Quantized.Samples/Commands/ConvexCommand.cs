using System.CommandLine;
using System.Globalization;
using System.Text;
using Microsoft.ML.Quantized.Samples.Reproduction;
using Spectre.Console;

namespace Microsoft.ML.Quantized.Samples.Commands;

/// <summary>
/// Li et al. 2017 on convex problems (REPRODUCTION.md, "Training quantized nets", questions 1, 2 and 4, and 3 for the
/// convex case): least squares and logistic regression trained with full-precision SGD, BinaryConnect's shadow-weight rule
/// and stochastic rounding on a uniform grid, over a learning-rate sweep and a batch-size sweep; the gap to the optimum of
/// the weights each method deploys, against rounding the optimum itself, and how often the deployed weights change grid
/// point. Writes the <c>convex</c> section of docs/reproduction.md and a plot per problem.
/// </summary>
internal static class ConvexCommand
{
    private const string SectionStart = "<!-- bench:convex -->";
    private const string SectionEnd = "<!-- /bench:convex -->";
    private static readonly double[] LearningRates = [0.3, 0.1, 0.03, 0.01, 0.003, 0.001];
    private static readonly int[] BatchSizes = [32, 128, 256, 512, 1024];
    private static readonly ConvexMethod[] Methods = [ConvexMethod.FullPrecision, ConvexMethod.BinaryConnect, ConvexMethod.StochasticRounding];

    public static System.CommandLine.Command Create()
    {
        var count = new Option<int>("--count") { Description = "Examples per problem.", DefaultValueFactory = _ => 2000 };
        var dimension = new Option<int>("--dimension") { Description = "Weights per problem.", DefaultValueFactory = _ => 50 };
        var step = new Option<double>("--step") { Description = "Grid step of the quantized methods (1/16: about 5 bits over the weights' range).", DefaultValueFactory = _ => 1.0 / 16 };
        var epochs = new Option<int>("--epochs")
        {
            Description = "Epochs of a run at learning rate 0.1 and batch 32; other runs train as many steps times learning rate (epochs x 0.1 / rate x batch / 32), so slow rates get the time to converge.",
            DefaultValueFactory = _ => 40,
        };
        var batch = new Option<int>("--batch") { Description = "Minibatch size of the learning-rate sweep.", DefaultValueFactory = _ => 32 };
        var batchRate = new Option<double>("--batch-sweep-rate") { Description = "Learning rate of the batch-size sweep.", DefaultValueFactory = _ => 0.03 };
        var seeds = new Option<int>("--seeds") { Description = "Seeds (data and shuffles) per setting; figures are their means.", DefaultValueFactory = _ => 3 };
        var output = new Option<FileInfo>("--out") { Description = "Markdown file whose convex section is replaced.", DefaultValueFactory = _ => new FileInfo("docs/reproduction.md") };
        var command = new System.CommandLine.Command("convex", "Li et al. 2017 on convex problems: full precision vs BinaryConnect vs stochastic rounding over learning rates and batch sizes.")
        {
            count, dimension, step, epochs, batch, batchRate, seeds, output,
        };
        command.SetAction(parse => Run(parse.GetValue(count), parse.GetValue(dimension), parse.GetValue(step), parse.GetValue(epochs), parse.GetValue(batch),
            parse.GetValue(batchRate), parse.GetValue(seeds), parse.GetValue(output)!));
        return command;
    }

    private sealed record Setting(string Problem, ConvexMethod Method, double LearningRate, int Batch, double Gap, double Changes);

    private static int Run(int count, int dimension, double step, int epochs, int batch, double batchRate, int seeds, FileInfo output)
    {
        if (seeds < 1) throw new ArgumentException($"--seeds must be at least 1; got {seeds}.");
        var load = BenchmarkCommand.LoadAverage();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var problems = Enumerable.Range(0, seeds).Select(s => new[]
        {
            ConvexProblem.LeastSquares(count, dimension, seed: 100 + s),
            ConvexProblem.LogisticRegression(count, dimension, seed: 200 + s),
        }).ToArray();
        var names = problems[0].Select(p => p.Name).ToArray();
        var settings = new List<Setting>();
        Setting Measure(int p, ConvexMethod method, double rate, int size)
        {
            int budget = Budget(epochs, rate, size);
            var runs = Enumerable.Range(0, seeds).Select(s => ConvexTraining.Run(problems[s][p], method, rate, step, budget, size, seed: s)).ToArray();
            var setting = new Setting(names[p], method, rate, size, runs.Average(r => r.FinalGap()), runs.Average(r => r.Changes[^5..].Average()));
            settings.Add(setting);
            return setting;
        }
        for (int p = 0; p < names.Length; p++)
        {
            foreach (var method in Methods)
                foreach (double rate in LearningRates)
                {
                    var s = Measure(p, method, rate, batch);
                    AnsiConsole.MarkupLine(string.Create(CultureInfo.InvariantCulture, $"{names[p]}, {method}, lr {rate}: gap {s.Gap:E2}"));
                }
            foreach (var method in Methods.Skip(1))
                foreach (int size in BatchSizes.Where(b => b != batch))
                    Measure(p, method, batchRate, size);
        }
        var rounded = names.Select((_, p) => problems.Average(set => set[p].Loss(set[p].Optimum.Select(v => ConvexTraining.RoundToGrid(v, step)).ToArray()) - set[p].MinimumLoss)).ToArray();

        string plotPrefix = Path.Combine(output.DirectoryName ?? ".", "reproduction-convex");
        for (int p = 0; p < names.Length; p++) Plot(settings.Where(s => s.Problem == names[p] && s.Batch == batch).ToList(), rounded[p], names[p], $"{plotPrefix}-{p + 1}.png", step);
        var markdown = Render(settings, names, rounded, count, dimension, step, epochs, batch, batchRate, seeds, load, clock.Elapsed, plotPrefix);
        BenchmarkCommand.WriteSection(output, markdown, SectionStart, SectionEnd);
        AnsiConsole.MarkupLine($"Written to [blue]{Markup.Escape(output.FullName)}[/] and {names.Length} plots.");
        return 0;
    }

    /// <summary>Epochs of a run: <paramref name="epochs"/> at rate 0.1 and batch 32, scaled so that steps x rate stay the same.</summary>
    private static int Budget(int epochs, double rate, int batch) => (int)Math.Ceiling(epochs * (0.1 / rate) * (batch / 32.0));

    private static string Render(List<Setting> settings, string[] names, double[] rounded, int count, int dimension, double step, int epochs, int batch,
        double batchRate, int seeds, string? load, TimeSpan elapsed, string plotPrefix)
    {
        var ci = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.AppendLine("## Training quantized nets (Li et al. 2017): BinaryConnect vs stochastic rounding on convex problems");
        sb.AppendLine();
        sb.AppendLine(string.Create(ci,
            $"Least squares and L2-regularized logistic regression (lambda 1e-3) on {count:N0} Gaussian examples of {dimension} features with a planted solution " +
            $"(`ConvexProblem`), trained from zero by minibatch SGD at a constant learning rate (`ConvexTraining`) for {epochs} epochs at rate 0.1 and batch 32, and as many " +
            $"steps times rate otherwise (epochs x 0.1 / rate x batch / 32: {Budget(epochs, LearningRates[^1], 32):N0} epochs at rate {LearningRates[^1]:G4}), so that every run has " +
            $"the time to reach its floor: full precision; **BC**, " +
            $"BinaryConnect's rule on a uniform grid of step {step:G4} (gradient at the rounded weights, applied to float shadow weights; the model deployed is the rounded " +
            $"shadow weights); **SR**, stochastic rounding onto the same grid after every step (no float weights kept). The grid is unbounded, as in Li et al.'s analysis. " +
            $"Gap = f(deployed weights) - f(w*), the minimum found by Newton's method, averaged over the last 5 epochs and over {seeds} seeds (data and shuffles). " +
            $"\"Rounding w*\" is the gap of the optimum itself rounded to the grid, the floor a grid of this step sets. Changes = grid-point changes per weight per epoch " +
            $"(last 5 epochs), how restless the deployed weights are. Double precision throughout. {BenchmarkCommand.Provenance(load)} Whole run: {elapsed.TotalSeconds:F0} s."));
        sb.AppendLine();
        for (int p = 0; p < names.Length; p++)
        {
            sb.AppendLine(string.Create(ci, $"**{char.ToUpperInvariant(names[p][0])}{names[p][1..]}** (batch {batch}; rounding w* gives a gap of {rounded[p]:E2}); plot: `{Path.GetFileName(plotPrefix)}-{p + 1}.png`."));
            sb.AppendLine();
            sb.AppendLine("| learning rate | full precision gap | BC gap | SR gap | SR gap / BC gap | BC changes | SR changes |");
            sb.AppendLine("|---:|---:|---:|---:|---:|---:|---:|");
            foreach (double rate in LearningRates)
            {
                Setting Get(ConvexMethod m) => settings.Single(s => s.Problem == names[p] && s.Method == m && s.LearningRate == rate && s.Batch == batch);
                var (fp, bc, sr) = (Get(ConvexMethod.FullPrecision), Get(ConvexMethod.BinaryConnect), Get(ConvexMethod.StochasticRounding));
                sb.AppendLine(string.Create(ci, $"| {rate:G4} | {fp.Gap:E2} | {bc.Gap:E2} | {sr.Gap:E2} | {sr.Gap / bc.Gap:F1}x | {bc.Changes:F2} | {sr.Changes:F2} |"));
            }
            sb.AppendLine();
            sb.AppendLine(string.Create(ci, $"Batch sizes at learning rate {batchRate:G4} (the same number of steps for each):"));
            sb.AppendLine();
            sb.AppendLine("| batch | BC gap | SR gap | SR gap / BC gap |");
            sb.AppendLine("|---:|---:|---:|---:|");
            foreach (int size in BatchSizes)
            {
                var bc = settings.FirstOrDefault(s => s.Problem == names[p] && s.Method == ConvexMethod.BinaryConnect && s.LearningRate == batchRate && s.Batch == size);
                var sr = settings.FirstOrDefault(s => s.Problem == names[p] && s.Method == ConvexMethod.StochasticRounding && s.LearningRate == batchRate && s.Batch == size);
                if (bc is null || sr is null) continue;
                sb.AppendLine(string.Create(ci, $"| {size} | {bc.Gap:E2} | {sr.Gap:E2} | {sr.Gap / bc.Gap:F1}x |"));
            }
            sb.AppendLine();
        }
        return sb.ToString();
    }

    /// <summary>Gap against learning rate, both log scale, one line per method and the rounding floor.</summary>
    private static void Plot(List<Setting> settings, double rounded, string problem, string path, double step)
    {
        var plot = new ScottPlot.Plot();
        var colors = new[] { ScottPlot.Colors.Gray, ScottPlot.Colors.SteelBlue, ScottPlot.Colors.OrangeRed };
        foreach (var (method, color) in Methods.Zip(colors))
        {
            var points = settings.Where(s => s.Method == method).OrderBy(s => s.LearningRate).ToArray();
            var line = plot.Add.Scatter(points.Select(s => Math.Log10(s.LearningRate)).ToArray(), points.Select(s => Math.Log10(Math.Max(s.Gap, 1e-16))).ToArray());
            line.LegendText = method switch
            {
                ConvexMethod.FullPrecision => "full precision",
                ConvexMethod.BinaryConnect => "BC (shadow weights)",
                _ => "SR (stochastic rounding)",
            };
            line.Color = color;
            line.LineWidth = 2;
            line.MarkerSize = 8;
        }
        var floor = plot.Add.HorizontalLine(Math.Log10(rounded));
        floor.LegendText = "rounding w* to the grid";
        floor.Color = ScottPlot.Colors.DarkGreen;
        floor.LinePattern = ScottPlot.LinePattern.Dashed;
        plot.Title(string.Create(CultureInfo.InvariantCulture, $"{problem}: gap to the optimum after training (grid step {step:G4})"));
        plot.XLabel("log10 learning rate");
        plot.YLabel("log10 (f(deployed w) - f*)");
        plot.ShowLegend(ScottPlot.Alignment.LowerRight);
        plot.SavePng(path, 1000, 650);
    }
}
