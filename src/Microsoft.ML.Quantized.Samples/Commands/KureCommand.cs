using System.CommandLine;
using System.Globalization;
using System.Text;
using Microsoft.ML.Quantized.Samples.Reproduction;
using Spectre.Console;

namespace Microsoft.ML.Quantized.Samples.Commands;

/// <summary>
/// KURE (Shkolnik et al. 2020) on one of three tasks (<c>--task</c>): the embedded Moby Dick character LM (default), sequential
/// MNIST or the Brown word LM. One flow for all (<see cref="KureTask{TModel}"/> supplies the model kind and data): trains a
/// float model, fine-tunes three copies for the same steps with Adam at 1e-3 (without the kurtosis term, with it per
/// tensor as in the paper, with it per row), then quantizes the float model and the three copies after training to 4, 3
/// and 2 bits (uniform, one step per tensor or, with <c>--row-steps</c>, per row; under both step rules: max |w| and least
/// squared error) and with a 4-bit step 5% off or rounded to a power of two (part a). Part b: three more copies of the
/// float model are trained quantization-aware at 4 bits (uniform weights, straight-through estimator) for the same number
/// of steps, with the same three kurtosis settings, then re-quantized after training to 3, 5, 6 and 8 bits and to a
/// power-of-two step. With <c>--activation-bits</c>, part a also quantizes each model's gates and hidden state after training
/// (with float and with 4-bit weights) and plots the gates' post-activation histograms. Writes the task's section of
/// docs/benchmarks.md. With <c>--lambda-sweep</c>, parts a and b give way to
/// <see cref="KureLambdaSweep"/> (its own section).
/// </summary>
internal static class KureCommand
{
    public static System.CommandLine.Command Create()
    {
        var task = new Option<string>("--task") { Description = "moby (embedded Moby Dick character LM), smnist (sequential MNIST; build/fetch-data.sh --only mnist) or brown (Brown word LM 1x300; build/fetch-data.sh --only brown).", DefaultValueFactory = _ => "moby" };
        var steps = new Option<int?>("--max-steps") { Description = "Training steps of the float model (default: moby 400, smnist 2000, brown 1000)." };
        var fineTuneSteps = new Option<int?>("--fine-tune-steps") { Description = "Fine-tuning steps of each copy, with and without KURE (default: moby 200, smnist 300, brown 250)." };
        var qatSteps = new Option<int?>("--qat-steps") { Description = "Part b: 4-bit quantization-aware training steps of each copy (with and without KURE), from the float model; 0 skips part b (default: as --fine-tune-steps)." };
        var hidden = new Option<int?>("--hidden") { Description = "LSTM hidden units (default: moby 256, smnist 128, brown 300)." };
        var lambda = new Option<double>("--lambda") { Description = "KURE coefficient (KureOptions.Lambda; default its default).", DefaultValueFactory = _ => KureOptions.DefaultLambda };
        var seeds = new Option<string>("--seeds") { Description = "Comma-separated random seeds. Parts a and b run once per seed, float training included, and each table cell is the mean over the seeds ± half their range, then each table comes again seed by seed (every seed's value in a cell); the lambda sweep takes one seed, from which its --fine-tune-seeds count up.", DefaultValueFactory = _ => "1" };
        var data = new Option<DirectoryInfo?>("--data") { Description = "smnist: folder with the MNIST IDX files (default data/mnist); brown: folder with the prepared split (default data/brown). Not used by moby." };
        var trainCount = new Option<int?>("--train-count") { Description = "smnist only: training images, the first N of the training file (default 10,000); the next 1,000 validate." };
        var testTokens = new Option<int>("--test-tokens") { Description = "moby and brown: score the first N test tokens (0 = the whole test set). Fewer tokens make the many evaluations faster.", DefaultValueFactory = _ => 0 };
        var qatStep = new Option<string>("--qat-step") { Description = "Part b: step rule of the 4-bit quantization-aware training: max (max |w| / (2^(b-1) - 1)) or mse (the step with the least squared error, which clips outliers). Reports use both rules.", DefaultValueFactory = _ => "max" };
        var rowSteps = new Option<bool>("--row-steps") { Description = "Quantize with one step per weight row (QuantizerOptions.PerRowScale) instead of one per tensor, in every report and in part b's training." };
        var lambdaSweep = new Option<string?>("--lambda-sweep") { Description = $"Instead of parts a and b: fine-tune copies without KURE and with it at each of these comma-separated lambdas, per tensor and per row, and score each at float, 4 and 3 bits (e.g. {KureLambdaSweep.ExampleLambdas}). Writes the task's -lambda section." };
        var activationBits = new Option<string>("--activation-bits") { Description = "Part a: comma-separated activation bit widths (2-8) to quantize every model's gates and hidden state to after training, with float and with 4-bit weights (uniform, dynamic max step); also plots the gates' post-activation histograms. Empty (the default): none.", DefaultValueFactory = _ => "" };
        var perTensorBits = new Option<string>("--per-tensor-bits") { Description = "Part a: comma-separated bit widths (2-8) at which every model's recurrent weight tensors, and each gate's rows of them, are also quantized one at a time with the rest float (where the k-bit error comes from). Empty (the default): none.", DefaultValueFactory = _ => "" };
        var activationTargets = new Option<string?>("--quantized-activations") { Description = "Part a, with --activation-bits: the activations those rows quantize, gates, hidden and cell joined by '+' (e.g. cell, gates+cell; RobustnessReportBuilder.QuantizedActivations); writes its own section (e.g. kure-cell). Default: the gates and hidden state." };
        var statistic = new Option<string>("--statistic") { Description = "Parts a and b and the lambda sweep: the uniformity statistic the KURE term regularizes: kurtosis (the paper's, target 1.8) or cv (the coefficient of variation of |w - mean|, target 1/sqrt(3); KureOptions.Statistic). cv writes its own -cv section (-lambda-cv for the sweep). From Gaussian-like weights the cv term is some 200 times smaller than the kurtosis term at the same lambda, so sweep it over larger lambdas (e.g. 1,10,100,1000).", DefaultValueFactory = _ => "kurtosis" };
        var fineTuneSeeds = new Option<int?>("--fine-tune-seeds") { Description = "With --lambda-sweep: fine-tune every copy under this many seeds (--seed, --seed + 1, ...) to show the noise (default 2)." };
        var output = new Option<FileInfo>("--out") { Description = "Markdown file to write (the task's KURE section is replaced).", DefaultValueFactory = _ => new FileInfo("docs/benchmarks.md") };
        var command = new System.CommandLine.Command("kure", "KURE: post-training quantization of a model fine-tuned without vs with kurtosis regularization (Moby Dick char LM, sequential MNIST or Brown word LM).")
        {
            task, steps, fineTuneSteps, qatSteps, hidden, lambda, seeds, data, trainCount, testTokens, qatStep, rowSteps, activationBits, activationTargets, perTensorBits, statistic, lambdaSweep, fineTuneSeeds, output,
        };
        command.SetAction(parse =>
        {
            var seedList = SeedList.Parse(parse.GetValue(seeds)!);
            var sweep = Sweep(parse.GetValue(lambdaSweep), parse.GetValue(fineTuneSeeds), seedList,
                new Option[] { lambda, qatStep, activationBits, activationTargets, perTensorBits }.Where(o => parse.GetResult(o) is { Implicit: false }).Select(o => o.Name).Concat(parse.GetValue(qatSteps) is null ? [] : [qatSteps.Name]));
            return Run(parse.GetValue(task)!, parse.GetValue(steps), parse.GetValue(fineTuneSteps), parse.GetValue(qatSteps), parse.GetValue(hidden),
                parse.GetValue(lambda), seedList, parse.GetValue(data), parse.GetValue(trainCount), parse.GetValue(testTokens), parse.GetValue(qatStep)!,
                parse.GetValue(rowSteps), ParseBits(parse.GetValue(activationBits)!, activationBits.Name),
                parse.GetValue(activationTargets) is { } targets ? ActivationTargets.Parse(targets, $"--quantized-activations '{targets}'") : null,
                ParseBits(parse.GetValue(perTensorBits)!, perTensorBits.Name), ParseStatistic(parse.GetValue(statistic)!), sweep, parse.GetValue(output)!);
        });
        return command;
    }

    /// <summary>
    /// The lambda sweep's settings, or null without <c>--lambda-sweep</c>; <paramref name="partOptions"/> are the given options
    /// that only parts a and b use; the sweep takes one of <paramref name="runSeeds"/> (<c>--seeds</c>).
    /// </summary>
    private static (double[] Lambdas, int Seeds)? Sweep(string? lambdas, int? seeds, int[] runSeeds, IEnumerable<string> partOptions)
    {
        if (lambdas is null)
        {
            if (seeds is not null) throw new ArgumentException("--fine-tune-seeds applies to --lambda-sweep only.");
            return null;
        }
        if (partOptions.FirstOrDefault() is { } option)
            throw new ArgumentException($"{option} does not apply to --lambda-sweep, which fine-tunes at each of its own lambdas and runs no quantization-aware training.");
        if (seeds < 1) throw new ArgumentException($"--fine-tune-seeds must be at least 1; got {seeds}.");
        if (runSeeds.Length > 1)
            throw new ArgumentException($"--seeds with --lambda-sweep takes one seed (its --fine-tune-seeds count up from it); got {string.Join(",", runSeeds)}.");
        return (KureLambdaSweep.ParseLambdas(lambdas), seeds ?? 2);
    }

    /// <summary>A bit-width list such as <c>--activation-bits</c> (named <paramref name="option"/>): distinct bit widths, each 2-8 (empty for none).</summary>
    internal static int[] ParseBits(string text, string option) =>
        OptionList.Split(text)
            .Select(p => int.TryParse(p, NumberStyles.Integer, CultureInfo.InvariantCulture, out var b) && b is >= 2 and <= 8
                ? b
                : throw new ArgumentException($"{option} holds '{p}': each must be a whole number of bits from 2 to 8, e.g. 8,4,3."))
            .Distinct().Order().ToArray();

    /// <summary>The <c>--statistic</c> value: kurtosis or cv.</summary>
    private static UniformityStatistic ParseStatistic(string text) => text.Trim().ToLowerInvariant() switch
    {
        "kurtosis" => UniformityStatistic.Kurtosis,
        "cv" => UniformityStatistic.AbsoluteCoefficientOfVariation,
        _ => throw new ArgumentException($"--statistic '{text}': use kurtosis (the paper's) or cv (coefficient of variation of |w - mean|)."),
    };

    private static int Run(string task, int? steps, int? fineTuneSteps, int? qatSteps, int? hidden, double lambda, int[] seeds, DirectoryInfo? data, int? trainCount,
        int testTokens, string qatStep, bool rowSteps, int[] activationBits, RecurrentActivations? activationTargets, int[] perTensorBits, UniformityStatistic statistic,
        (double[] Lambdas, int Seeds)? sweep, FileInfo output)
    {
        var name = task.Trim().ToLowerInvariant();
        bool minimumError = qatStep.Trim().ToLowerInvariant() switch
        {
            "max" => false,
            "mse" => true,
            _ => throw new ArgumentException($"--qat-step '{qatStep}': use max (max |w| / (2^(b-1) - 1)) or mse (least squared error)."),
        };
        if (name == "moby" && data is not null) throw new ArgumentException("--data does not apply to --task moby (the corpus is embedded); use --task smnist or brown.");
        if (name != "smnist" && trainCount is not null) throw new ArgumentException($"--train-count applies to --task smnist only, not to '{name}'.");
        if (trainCount < 1) throw new ArgumentException($"--train-count must be at least 1; got {trainCount}.");
        if (testTokens < 0) throw new ArgumentException($"--test-tokens must be 0 (the whole test set) or more; got {testTokens}.");
        if (name == "smnist" && testTokens != 0) throw new ArgumentException("--test-tokens applies to --task moby and brown (sMNIST scores all 10,000 test images).");
        if (steps < 1 || fineTuneSteps < 1 || qatSteps < 0)
            throw new ArgumentException($"--max-steps and --fine-tune-steps must be at least 1 and --qat-steps at least 0; got {steps}, {fineTuneSteps} and {qatSteps}.");
        if (hidden < 1) throw new ArgumentException($"--hidden must be at least 1; got {hidden}.");
        if (activationTargets is not null && activationBits.Length == 0)
            throw new ArgumentException("--quantized-activations names what the --activation-bits rows quantize; give --activation-bits too, e.g. --activation-bits 8,4.");
        if (!double.IsFinite(lambda) || lambda <= 0)
            throw new ArgumentException($"--lambda must be a finite number > 0 (the paper uses 1.0); got {lambda.ToString(CultureInfo.InvariantCulture)}.");
        var qat = new QuantizerOptions { Kind = QuantizerKind.Uniform, Bits = 4, MinimumErrorStep = minimumError, PerRowScale = rowSteps };
        return name switch
        {
            "moby" => Run(seed => LanguageModelKureTask.Moby(hidden ?? 256, seed, testTokens), seeds, steps ?? 400, fineTuneSteps ?? 200, qatSteps ?? fineTuneSteps ?? 200, lambda, qat, activationBits, activationTargets, perTensorBits, statistic, sweep, output),
            "smnist" => Run(seed => new SmnistKureTask(data ?? new DirectoryInfo("data/mnist"), trainCount ?? 10_000, hidden ?? 128, seed), seeds,
                steps ?? 2000, fineTuneSteps ?? 300, qatSteps ?? fineTuneSteps ?? 300, lambda, qat, activationBits, activationTargets, perTensorBits, statistic, sweep, output),
            "brown" => Run(seed => LanguageModelKureTask.Brown(data ?? new DirectoryInfo("data/brown"), hidden ?? 300, seed, testTokens), seeds,
                steps ?? 1000, fineTuneSteps ?? 250, qatSteps ?? fineTuneSteps ?? 250, lambda, qat, activationBits, activationTargets, perTensorBits, statistic, sweep, output),
            _ => throw new ArgumentException($"--task '{task}': use moby, smnist or brown."),
        };
    }

    /// <summary>
    /// The one flow every task runs, once per seed (<paramref name="taskFor"/> gives the task under a seed): float training,
    /// fine-tuning without and with KURE, 4-bit QAT copies, reports; then the tables, each cell over the seeds.
    /// </summary>
    private static int Run<TModel>(Func<int, KureTask<TModel>> taskFor, int[] seeds, int steps, int fineTuneSteps, int qatSteps, double lambda, QuantizerOptions qat,
        int[] activationBits, RecurrentActivations? activationTargets, int[] perTensorBits, UniformityStatistic statistic, (double[] Lambdas, int Seeds)? sweep, FileInfo output)
        where TModel : class, IDisposable
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var load = BenchmarkCommand.LoadAverage();
        var task = taskFor(seeds[0]);
        AnsiConsole.MarkupLine($"[bold]KURE[/] on the {Markup.Escape(task.Title)}: {Markup.Escape(task.Setup(steps))}; {fineTuneSteps} fine-tuning steps per copy" +
                               (sweep is { } s ? $", lambdas {string.Join(", ", s.Lambdas.Select(l => l.ToString(CultureInfo.InvariantCulture)))}, {s.Seeds} seed(s) each."
                                   : (qatSteps > 0 ? $", {qatSteps} 4-bit quantization-aware steps per copy" : "") + $"; seed{(seeds.Length == 1 ? "" : "s")} {string.Join(", ", seeds)}."));
        string WholeRun() => $"\nWhole run (training, fine-tuning, every evaluation{(seeds.Length == 1 ? "" : ", every seed")}): {clock.Elapsed.TotalMinutes:F1} minutes.\n";
        void Done(string what) => AnsiConsole.MarkupLine($"[grey]{Markup.Escape(what)} done at {clock.Elapsed.TotalMinutes:F1} min.[/]");

        // Every model is reported under both step rules; gates are recorded once (they do not depend on the rule).
        RobustnessReportBuilder Builder(bool mse, List<int> bits, List<double> multipliers, bool partA) =>
            new()
            {
                BitWidths = bits, StepSizeMultipliers = multipliers, MinimumErrorStep = mse, PerRowScale = qat.PerRowScale, RecordGates = partA && !mse,
                ActivationBitWidths = partA ? activationBits : [], QuantizedActivations = activationTargets, PerTensorBitWidths = partA ? perTensorBits : [],
            };
        RobustnessReport[] Reports(KureTask<TModel> on, TModel m, List<int> bits, List<double> multipliers, bool partA) =>
            Timed("robustness reports", () => new[] { false, true }.Select(mse => on.Report(m, Builder(mse, bits, multipliers, partA))).ToArray());
        RobustnessReport[] PartA(KureTask<TModel> on, TModel m) => Reports(on, m, [2, 3, 4], [0.95, 1.05], partA: true);
        // Part b: the bit widths and the power-of-two step only.
        RobustnessReport[] PartB(KureTask<TModel> on, TModel m) => Reports(on, m, [3, 4, 5, 6, 8], [], partA: false);
        T Timed<T>(string what, Func<T> run)
        {
            var result = run();
            Done(what);
            return result;
        }
        // The three fine-tunings of each part: no kurtosis term, the paper's term per tensor, the term per row.
        var variants = new (string Name, KureOptions Kure)[]
        {
            ("no KURE", new KureOptions { Lambda = 0 }),
            (Kure(lambda, perRow: false, statistic), Term(lambda, perRow: false, statistic)),
            (Kure(lambda, perRow: true, statistic), Term(lambda, perRow: true, statistic)),
        };
        string Seeded(string name, int seed) => seeds.Length == 1 ? name : $"{name}, seed {seed}";
        (string Name, RobustnessReport[] Reports)[] FineTuned(KureTask<TModel> on, int seed, string prefix, TModel from, TrainingOptions training,
            Func<KureTask<TModel>, TModel, RobustnessReport[]> report) =>
            variants.Select(v =>
            {
                var name = Seeded(prefix + v.Name, seed);
                using var model = Timed(name, () => ConsoleProgress.Run(name, p => on.FineTune(from, v.Kure, training, p)));
                return ($"{prefix}{v.Name}", report(on, model));
            }).ToArray();

        var section = task.Section(qat.PerRowScale) + StatisticSuffix(statistic) +
                      (activationTargets is { } targets ? "-" + ActivationTargets.Name(targets) : "");
        if (sweep is { } settings)
        {
            using var floatModel = Timed("float training", () => ConsoleProgress.Run("float", p => task.Train(task.Training(steps), p)));
            var swept = KureLambdaSweep.Run(task, floatModel, steps, fineTuneSteps, settings.Lambdas, settings.Seeds, statistic, qat.PerRowScale, load, Done);
            return Write(swept + WholeRun(), task.Section(qat.PerRowScale) + "-lambda" + StatisticSuffix(statistic), output);
        }
        // Each seed's columns (part a, then part b), in the seeds' order.
        var partA = new List<(string Name, RobustnessReport[] Reports)[]>();
        var partB = new List<(string Name, RobustnessReport[] Reports)[]>();
        foreach (var seed in seeds)
        {
            var seeded = seed == seeds[0] ? task : taskFor(seed);
            using var trained = Timed(Seeded("float training", seed), () => ConsoleProgress.Run(Seeded("float", seed), p => seeded.Train(seeded.Training(steps), p)));
            partA.Add(FineTuned(seeded, seed, FineTunePrefix, trained, seeded.FineTuning(fineTuneSteps), PartA).Prepend(("trained", PartA(seeded, trained))).ToArray());
            if (qatSteps == 0) continue;
            using var fourBit = seeded.WithQuantization(trained, qat);
            partB.Add(FineTuned(seeded, seed, "4-bit QAT, ", fourBit, seeded.FineTuning(qatSteps), PartB));
        }
        var columns = OverSeeds(partA);
        var markdown = Render(task, columns, steps, fineTuneSteps, qat, statistic, seeds, load);
        if (activationBits.Length > 0)
        {
            var figure = $"{Path.GetFileNameWithoutExtension(output.Name)}-{section}-gates.png";
            HistogramPanelPlot.Save(columns.Select(c => (c.Name, HistogramPanelPlot.FirstLayer(c.Reports[0][0].Gates))).ToArray(), Path.Combine(output.DirectoryName ?? ".", figure), "post-activation");
            markdown += "Post-activation histograms of every gate on the test data (20 bins over [0, 1] after a sigmoid, [-1, 1] after a tanh), one line per column" +
                        $"{(seeds.Length == 1 ? "" : $" (seed {seeds[0]})")}: `{figure}`.\n\n";
        }
        if (partB.Count > 0) markdown += RenderQat(task, OverSeeds(partB), steps, qatSteps, qat, statistic, seeds);
        return Write(markdown + WholeRun(), section, output);
    }

    /// <summary>
    /// One column per fine-tuning, each holding its reports under every seed: <c>Reports[seed][rule]</c>, from each seed's
    /// columns in the same order.
    /// </summary>
    private static (string Name, RobustnessReport[][] Reports)[] OverSeeds(List<(string Name, RobustnessReport[] Reports)[]> perSeed) =>
        perSeed[0].Select((column, c) => (column.Name, perSeed.Select(run => run[c].Reports).ToArray())).ToArray();

    /// <summary>Prints <paramref name="markdown"/> and writes it as <paramref name="section"/> of <paramref name="output"/>.</summary>
    private static int Write(string markdown, string section, FileInfo output)
    {
        AnsiConsole.WriteLine(markdown);
        BenchmarkCommand.WriteSection(output, markdown, $"<!-- bench:{section} -->", $"<!-- /bench:{section} -->");
        AnsiConsole.MarkupLine($"Written to [blue]{Markup.Escape(output.FullName)}[/].");
        return 0;
    }

    private static string Render<TModel>(KureTask<TModel> task, (string Name, RobustnessReport[][] Reports)[] columns, int steps, int fineTuneSteps, QuantizerOptions qat,
        UniformityStatistic statistic, int[] seeds, string? load)
        where TModel : class, IDisposable
    {
        var sb = new StringBuilder();
        sb.AppendLine($"## KURE: one float model, many bit widths ({task.Title}{(qat.PerRowScale ? ", one step per row" : "")}{Heading(statistic)})");
        sb.AppendLine();
        sb.AppendLine($"{task.Setup(steps)}; then three copies fine-tuned {fineTuneSteps} steps " +
                      $"with Adam 1e-3 (the paper's rate): {Variants(statistic)}. " +
                      $"Every column is then quantized after training, no retraining: uniform symmetric, {StepScope(qat.PerRowScale)}, either max |w| / (2^(b-1) - 1) " +
                      "(every weight in range) or the step with the least squared error (`-mse` in the quantizer names: clips outliers). " +
                      (columns[0].Reports[0][0].Activations is { Count: > 0 } activationRows && activationRows[0].Label[..activationRows[0].Label.LastIndexOf(' ')] is var what
                          ? $"Rows `{what} k-bit`: {(what == "activations" ? "the gates and hidden state" : "the " + what)} quantized after training as well (uniform symmetric, a dynamic step " +
                            "max |x| / (2^(k-1) - 1) per tensor, the form the packed engine runs; sigmoid gates use the non-negative half of the grid), " +
                            "with float weights and with 4-bit weights under each step rule. "
                          : "") +
                      $"{task.MetricSentence}{OverSeedsClause(seeds)}. {BenchmarkCommand.Provenance(load)}" +
                      (task.Note.Length > 0 ? " " + task.Note : ""));
        sb.AppendLine();
        Table(sb, task, columns, ratioBits: [4, 3, 2], OverSeedsCell);
        sb.AppendLine();
        PerTensorTable(sb, task, columns, OverSeedsCell);
        SeedBySeed(sb, seeds, () =>
        {
            Table(sb, task, columns, ratioBits: [4, 3, 2], SeedBySeedCell);
            sb.AppendLine();
            PerTensorTable(sb, task, columns, SeedBySeedCell);
        });
        // The weight and gate statistics of the two KURE models (the last two columns), under the first seed.
        foreach (var (name, reports) in columns[^2..])
        {
            sb.AppendLine($"### Weight and gate statistics after fine-tuning with {name[FineTunePrefix.Length..]}{(seeds.Length == 1 ? "" : $", seed {seeds[0]}")}");
            sb.AppendLine();
            sb.Append(reports[0][0].ToMarkdown(4).Split("#### Weight kurtosis", 2) is { Length: 2 } parts ? "#### Weight kurtosis" + parts[1] : "");
            sb.AppendLine();
        }
        return sb.ToString();
    }

    private static string RenderQat<TModel>(KureTask<TModel> task, (string Name, RobustnessReport[][] Reports)[] columns, int steps, int qatSteps, QuantizerOptions qat,
        UniformityStatistic statistic, int[] seeds)
        where TModel : class, IDisposable
    {
        var sb = new StringBuilder();
        sb.AppendLine();
        sb.AppendLine($"## KURE: one 4-bit model, other bit widths ({task.Title}{(qat.PerRowScale ? ", one step per row" : "")}{Heading(statistic)})");
        sb.AppendLine();
        sb.AppendLine($"Same data and network as above. Three copies of the float model ({steps} steps) are trained quantization-aware at 4 bits " +
                      $"(uniform symmetric weights, {StepScope(qat.PerRowScale)} ({StepRule(qat.MinimumErrorStep)}), straight-through estimator) for {qatSteps} steps with Adam 1e-3, " +
                      $"{Variants(statistic)}; each is then re-quantized after training " +
                      $"to the other bit widths and to a power-of-two 4-bit step under both step rules, no retraining. {task.MetricSentence}{(seeds.Length == 1 ? "" : ", over the same seeds")}; same machine and run as above.");
        sb.AppendLine();
        Table(sb, task, columns, ratioBits: [3], OverSeedsCell);
        SeedBySeed(sb, seeds, () =>
        {
            Table(sb, task, columns, ratioBits: [3], SeedBySeedCell);
            sb.AppendLine();
        });
        return sb.ToString();
    }

    /// <summary>
    /// One column per model, one block of rows per step rule (each column holds one report per seed and rule, the rules in the same order):
    /// the metric at each bit width (float and "as trained" once, the latter only where no uniform row repeats its
    /// quantizer), each step-size row, then the mean recurrent-weight kurtosis, the mean gate kurtosis before and after the
    /// activation (where the first reports recorded gates) and, per rule, the metric at each of <paramref name="ratioBits"/>
    /// over float and the recurrent weights' relative quantization error there. <paramref name="cell"/> turns a row's values
    /// under the seeds into its cell (<see cref="OverSeedsCell"/> or <see cref="SeedBySeedCell"/>).
    /// </summary>
    private static void Table<TModel>(StringBuilder sb, KureTask<TModel> task, (string Name, RobustnessReport[][] Reports)[] columns, int[] ratioBits,
        Func<IReadOnlyList<double>, Func<double, string>, string> cell)
        where TModel : class, IDisposable
    {
        sb.AppendLine("| weights | " + string.Join(" | ", columns.Select(c => c.Name)) + " |");
        sb.AppendLine("|---|" + string.Concat(columns.Select(_ => "---:|")));
        string Cells(Func<RobustnessReport, double> value, Func<double, string> format, int rule = 0) =>
            string.Join(" | ", columns.Select(c => cell(c.Reports.Select(seed => value(seed[rule])).ToArray(), format)));
        string Percent(double fraction) => (100 * fraction).ToString("F1", CultureInfo.InvariantCulture) + " %";
        int rules = columns[0].Reports[0].Length;
        for (int rule = 0; rule < rules; rule++)
        {
            var first = columns[0].Reports[0][rule];
            // Uniform rows in every block; float once; "as trained" once, and only where no uniform row repeats its quantizer.
            bool Shown(RobustnessReportRow r) =>
                r.Label == "as trained" ? rule == 0 && first.BitWidths.Count(o => o.Quantizer == r.Quantizer) == 1
                : r.Bits != 32 || rule == 0;
            foreach (var row in first.BitWidths.Where(Shown))
                sb.AppendLine($"| {row.Label} (`{row.Quantizer}`) | " + Cells(r => r.BitWidths.First(o => o.Label == row.Label).Metric, task.Format, rule) + " |");
            foreach (var row in first.StepSizes.Skip(1))
                sb.AppendLine($"| {first.PerturbationBits}-bit, {row.Label} (`{row.Quantizer}`) | " + Cells(r => r.StepSizes.First(o => o.Label == row.Label).Metric, task.Format, rule) + " |");
            // Activation rows: those with float weights once (they do not depend on the step rule), the quantized-weight ones in every block.
            for (int a = 0; a < first.Activations.Count; a++)
            {
                var row = first.Activations[a];
                if (row.Bits == 32 && rule > 0) continue;
                int index = a;
                string weights = row.Bits == 32 ? "float weights" : $"{row.Bits}-bit weights (`{row.Quantizer}`)";
                sb.AppendLine($"| {row.Label}, {weights} | " + Cells(r => r.Activations[index].Metric, task.Format, rule) + " |");
            }
        }
        sb.AppendLine("| mean kurtosis of the recurrent weights | " + Cells(r => RecurrentWeights(r).Average(w => w.Kurtosis), F) + " |");
        sb.AppendLine("| mean row kurtosis of the recurrent weights | " + Cells(r => RecurrentWeights(r).Average(w => w.MeanRowKurtosis), F) + " |");
        sb.AppendLine("| largest max abs / std of a recurrent weight | " + Cells(r => RecurrentWeights(r).Max(w => w.MaxAbs / w.StdDev), F) + " |");
        if (columns.All(c => c.Reports[0][0].Gates.Count > 0))
        {
            sb.AppendLine("| mean gate kurtosis, pre-activation | " + Cells(r => r.Gates.Average(g => g.PreActivationKurtosis), F) + " |");
            sb.AppendLine("| mean gate kurtosis, post-activation | " + Cells(r => r.Gates.Average(g => g.PostActivationKurtosis), F) + " |");
        }
        for (int rule = 0; rule < rules; rule++)
            foreach (var bits in ratioBits)
                sb.AppendLine($"| {bits}-bit {task.MetricShort} / float {task.MetricShort} (`{columns[0].Reports[0][rule].AtBits(bits)!.Quantizer}`) | " +
                              Cells(r => r.AtBits(bits)!.Metric / r.Float.Metric, F, rule) + " |");
        // The recurrent weights' relative error sqrt(sum ||Q(W) - W||^2 / sum ||W||^2) at the same widths: what each step rule costs the weights.
        for (int rule = 0; rule < rules; rule++)
            foreach (var bits in ratioBits)
                sb.AppendLine($"| {bits}-bit relative weight error (`{columns[0].Reports[0][rule].AtBits(bits)!.Quantizer}`) | " +
                              Cells(r => r.AtBits(bits)!.WeightError, Percent, rule) + " |");
    }

    /// <summary>
    /// The per-tensor rows (<c>--per-tensor-bits</c>), when measured: one row per tensor or gate block, bit width and step
    /// rule, each cell the column's metric with only that part quantized over its float metric, and in brackets that part's
    /// share of the whole model's change at the same width, each the mean over the seeds; <paramref name="cell"/> writes the
    /// ratio over the seeds (<see cref="OverSeedsCell"/> or <see cref="SeedBySeedCell"/>).
    /// </summary>
    private static void PerTensorTable<TModel>(StringBuilder sb, KureTask<TModel> task, (string Name, RobustnessReport[][] Reports)[] columns,
        Func<IReadOnlyList<double>, Func<double, string>, string> cell)
        where TModel : class, IDisposable
    {
        if (columns[0].Reports[0][0].PerTensor.Count == 0) return;
        sb.AppendLine($"### One tensor at a time: {task.MetricShort} with only that tensor (or those gate rows) quantized, over float (share of the whole model's change at that width; the part's relative weight error)");
        sb.AppendLine();
        sb.AppendLine("| quantized alone | " + string.Join(" | ", columns.Select(c => c.Name)) + " |");
        sb.AppendLine("|---|" + string.Concat(columns.Select(_ => "---:|")));
        for (int rule = 0; rule < columns[0].Reports[0].Length; rule++)
        {
            var rows = columns[0].Reports[0][rule].PerTensor;
            for (int k = 0; k < rows.Count; k++)
            {
                int index = k;
                sb.AppendLine($"| `{rows[k].Label}` (`{rows[k].Quantizer}`) | " +
                              string.Join(" | ", columns.Select(c => Share(c.Reports.Select(seed => (seed[rule], seed[rule].PerTensor[index])).ToArray(), cell))) + " |");
            }
        }
        sb.AppendLine();
    }

    /// <summary>
    /// A per-tensor cell: the row's metric over float (over the seeds as <paramref name="cell"/> writes them), then its mean
    /// share of the whole model's change at that width (where the reports have that width and it is finite) and the quantized
    /// part's mean relative weight error, e.g. <c>1.320 (55 %; error 48.1 %)</c>.
    /// </summary>
    private static string Share((RobustnessReport Report, RobustnessReportRow Row)[] seeds, Func<IReadOnlyList<double>, Func<double, string>, string> cell)
    {
        double share = seeds.Average(s => s.Report.ShareOfCost(s.Row));
        return cell(seeds.Select(s => s.Row.Metric / s.Report.Float.Metric).ToArray(), F) + " (" + (double.IsFinite(share) ? $"{share * 100:F0} %; " : "") +
               $"error {(100 * seeds.Average(s => s.Row.WeightError)).ToString("F1", CultureInfo.InvariantCulture)} %)";
    }

    /// <summary>A table cell over the seeds: the one value, or the mean ± half the range (the form the lambda sweep's cells take too).</summary>
    internal static string OverSeedsCell(IReadOnlyList<double> values, Func<double, string> format) =>
        values.Count == 1 ? format(values[0]) : $"{format(values.Average())} ± {format((values.Max() - values.Min()) / 2)}";

    /// <summary>A table cell with each seed's value in the seeds' order, e.g. <c>253.1 / 251.9 / 255.0</c>: what a paired reading compares.</summary>
    private static string SeedBySeedCell(IReadOnlyList<double> values, Func<double, string> format) => string.Join(" / ", values.Select(format));

    /// <summary>
    /// For a run over several seeds, a heading and then what <paramref name="tables"/> writes: the tables above again with
    /// each seed's value in place of the mean (<see cref="SeedBySeedCell"/>); nothing for one seed.
    /// </summary>
    private static void SeedBySeed(StringBuilder sb, int[] seeds, Action tables)
    {
        if (seeds.Length == 1) return;
        sb.AppendLine();
        sb.AppendLine($"### Seed by seed: each cell lists seeds {string.Join(", ", seeds[..^1])} and {seeds[^1]} in that order");
        sb.AppendLine();
        tables();
    }

    /// <summary>The metric sentence's clause for a run over several seeds, e.g. <c>, mean over seeds 1, 2 and 3 ± half their range</c>; empty for one.</summary>
    private static string OverSeedsClause(int[] seeds) => seeds.Length == 1
        ? ""
        : $", mean over seeds {string.Join(", ", seeds[..^1])} and {seeds[^1]} ± half their range (each seed trains its own float model)";

    /// <summary>The statistics of the report's recurrent weight tensors (the ones KURE regularizes by default).</summary>
    internal static IEnumerable<WeightStatistics> RecurrentWeights(RobustnessReport report) =>
        report.Weights.Where(w => w.Name.StartsWith("layers.", StringComparison.Ordinal));

    /// <summary>A KURE column's name, e.g. <c>KURE (lambda 1)</c>, <c>KURE per row (lambda 1)</c> or <c>KURE cv (lambda 1)</c>.</summary>
    private static string Kure(double lambda, bool perRow, UniformityStatistic statistic) =>
        $"KURE{(statistic == UniformityStatistic.Kurtosis ? "" : " cv")}{(perRow ? " per row" : "")} (lambda {lambda.ToString(CultureInfo.InvariantCulture)})";

    /// <summary>The fine-tuning term of a KURE column: the statistic pushed to the uniform distribution's value.</summary>
    internal static KureOptions Term(double lambda, bool perRow, UniformityStatistic statistic) => new()
    {
        Lambda = lambda, PerRow = perRow, Statistic = statistic,
        Target = statistic == UniformityStatistic.Kurtosis ? KureOptions.UniformKurtosis : KureOptions.UniformAbsoluteCoefficientOfVariation,
    };

    /// <summary>The heading's note for a run that regularizes another statistic than the kurtosis.</summary>
    internal static string Heading(UniformityStatistic statistic) =>
        statistic == UniformityStatistic.Kurtosis ? "" : ", coefficient of variation in place of the kurtosis";

    /// <summary>The section name's suffix for a run that regularizes another statistic than the kurtosis: <c>-cv</c>.</summary>
    private static string StatisticSuffix(UniformityStatistic statistic) => statistic == UniformityStatistic.Kurtosis ? "" : "-cv";

    /// <summary>How part a's fine-tuned columns start: <c>+ fine-tune, KURE (lambda 1)</c>.</summary>
    private const string FineTunePrefix = "+ fine-tune, ";

    /// <summary>The three fine-tunings in a sentence.</summary>
    private static string Variants(UniformityStatistic statistic) => statistic == UniformityStatistic.Kurtosis
        ? "without the kurtosis term, with it on each recurrent weight tensor (the paper's form, target 1.8), " +
          "and with it on each row of those tensors (`KureOptions.PerRow`: one output unit's weights)"
        : $"without a uniformity term, with KURE's term built on {CoefficientOfVariation} on each recurrent weight tensor, " +
          "and on each row of those tensors (`KureOptions.PerRow`)";

    /// <summary>The coefficient-of-variation statistic and its target in words.</summary>
    internal const string CoefficientOfVariation = "the coefficient of variation of the absolute deviations " +
        "std(|w - mean|) / mean(|w - mean|) in place of the kurtosis (`KureOptions.Statistic`, target 1/sqrt(3) = 0.577, the uniform " +
        "distribution's; a Gaussian has 0.756)";

    private static string StepScope(bool rowSteps) => rowSteps ? "one step per weight row (`-row`)" : "one step per tensor";

    private static string StepRule(bool minimumError) => minimumError
        ? "the step with the least squared error, which clips outliers; `-mse` in the quantizer names"
        : "max |w| / (2^(b-1) - 1)";

    /// <summary>A table cell with three decimals.</summary>
    internal static string F(double value) => value.ToString("F3", CultureInfo.InvariantCulture);
}
