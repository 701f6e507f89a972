using System.Globalization;
using System.Text;

namespace Microsoft.ML.Quantized.Samples.Commands;

/// <summary>
/// The <c>kure --lambda-sweep</c> flow: what KURE's coefficient costs at float and buys after quantization. Copies of one
/// float model are fine-tuned for the same steps without the uniformity term and with it at each lambda (the kurtosis, or
/// with <c>--statistic cv</c> the coefficient of variation of |w - mean|), per tensor (the paper's form) and per row,
/// each under several fine-tuning seeds: the spread of the copies without the term is the noise a KURE gain has to
/// clear. Each copy is scored at float and after post-training quantization to 4 and 3 bits (uniform, max |w| step: the
/// rule outliers hurt), then freed.
/// </summary>
internal static class KureLambdaSweep
{
    /// <summary>The lambda list the error messages and the option's description give as an example.</summary>
    public const string ExampleLambdas = "0.03,0.1,0.3,1";

    /// <summary>Parses a comma-separated list of lambdas, each finite and &gt; 0, in the order given.</summary>
    public static double[] ParseLambdas(string text)
    {
        var parts = OptionList.Split(text);
        if (parts.Length == 0) throw new ArgumentException($"--lambda-sweep needs at least one lambda, e.g. {ExampleLambdas}.");
        return parts.Select(p => double.TryParse(p, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && double.IsFinite(v) && v > 0
            ? v
            : throw new ArgumentException($"--lambda-sweep holds '{p}': each lambda must be a finite number > 0, e.g. {ExampleLambdas}.")).Distinct().ToArray();
    }

    /// <summary>
    /// Fine-tunes and scores every copy of <paramref name="trained"/>; returns the section's Markdown (heading, recipe,
    /// table). <paramref name="done"/> is told when each copy is scored.
    /// </summary>
    public static string Run<TModel>(KureTask<TModel> task, TModel trained, int steps, int fineTuneSteps, IReadOnlyList<double> lambdas, int seeds,
        UniformityStatistic statistic, bool rowSteps, string? load, Action<string> done)
        where TModel : class, IDisposable
    {
        var builder = new RobustnessReportBuilder
        {
            BitWidths = [3, 4], StepSizeMultipliers = [], IncludePowerOfTwoStep = false, RecordGates = false, PerRowScale = rowSteps,
            MinimumErrorStep = false, // the sweep studies the max step (every weight in range), where the kurtosis term matters most
        };
        var forms = new List<(string Form, double Lambda, KureOptions Kure)> { ("no KURE", 0, new KureOptions { Lambda = 0 }) };
        foreach (var perRow in new[] { false, true })
            forms.AddRange(lambdas.Select(l => (perRow ? "KURE per row" : "KURE per tensor", l, KureCommand.Term(l, perRow, statistic))));

        var rows = forms.Select(f => (f.Form, f.Lambda, Reports: Enumerable.Range(0, seeds).Select(s =>
        {
            var training = task.FineTuning(fineTuneSteps);
            training.Seed += s;
            var name = $"{f.Form}{(f.Lambda > 0 ? $" (lambda {F(f.Lambda)})" : "")}, seed {training.Seed}";
            using var model = ConsoleProgress.Run(name, p => task.FineTune(trained, f.Kure, training, p));
            var report = task.Report(model, builder);
            done(name);
            return report;
        }).ToArray())).ToArray();

        var first = task.FineTuning(fineTuneSteps).Seed;
        var sb = new StringBuilder();
        sb.AppendLine($"## KURE: lambda sweep ({task.Title}{(rowSteps ? ", one step per row" : "")}{KureCommand.Heading(statistic)})");
        sb.AppendLine();
        sb.AppendLine($"{task.Setup(steps)}; then copies fine-tuned {fineTuneSteps} steps with Adam 1e-3 (the paper's rate), without the {Term(statistic)} " +
                      $"and with it at each lambda, on each recurrent weight tensor (per tensor, the paper's form) or on each of their rows " +
                      $"(`KureOptions.PerRow`), each under {seeds} fine-tuning seed{(seeds == 1 ? "" : "s")} ({string.Join(", ", Enumerable.Range(first, seeds))}; a seed draws the dropout masks and a classifier's " +
                      "example order, so a language model without dropout fine-tunes the same under every seed). Every copy is quantized after training, no retraining: uniform symmetric, " +
                      $"{(rowSteps ? "one step per weight row" : "one step per tensor")}, max |w| / (2^(b-1) - 1). {task.MetricSentence}; " +
                      (seeds > 1 ? "each cell is the mean over the seeds, ± half their range. " : "") +
                      BenchmarkCommand.Provenance(load) + (task.Note.Length > 0 ? " " + task.Note : ""));
        sb.AppendLine();
        sb.AppendLine("| fine-tuning | lambda | float | 4-bit | 3-bit | 4-bit / float | 3-bit / float | mean kurtosis | mean row kurtosis | largest max abs / std |");
        sb.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var (form, lambda, reports) in rows)
        {
            string Cell(Func<RobustnessReport, double> value, Func<double, string> format) => KureCommand.OverSeedsCell(reports.Select(value).ToArray(), format);
            sb.AppendLine($"| {form} | {(lambda > 0 ? F(lambda) : "0")} | {Cell(r => r.Float.Metric, task.Format)} | {Cell(r => r.AtBits(4)!.Metric, task.Format)} | " +
                          $"{Cell(r => r.AtBits(3)!.Metric, task.Format)} | {Cell(r => r.AtBits(4)!.Metric / r.Float.Metric, KureCommand.F)} | " +
                          $"{Cell(r => r.AtBits(3)!.Metric / r.Float.Metric, KureCommand.F)} | {Cell(r => KureCommand.RecurrentWeights(r).Average(w => w.Kurtosis), KureCommand.F)} | " +
                          $"{Cell(r => KureCommand.RecurrentWeights(r).Average(w => w.MeanRowKurtosis), KureCommand.F)} | {Cell(r => KureCommand.RecurrentWeights(r).Max(w => w.MaxAbs / w.StdDev), KureCommand.F)} |");
        }
        return sb.ToString();
    }

    /// <summary>The regularized statistic and its target in words.</summary>
    private static string Term(UniformityStatistic statistic) => statistic == UniformityStatistic.Kurtosis
        ? "kurtosis term (target 1.8)"
        : "term on " + KureCommand.CoefficientOfVariation;

    private static string F(double value) => value.ToString(CultureInfo.InvariantCulture);
}
