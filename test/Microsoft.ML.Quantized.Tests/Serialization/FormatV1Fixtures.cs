// The format-v1 fixtures: five tiny ML.NET model zips saved by the build of 2026-12 (model file format version 1,
// component versions 0x00010001), their input rows and the outputs that build computed, committed under
// TestData/format-v1/. FormatV1CompatibilityTests loads them with the current build and compares; this file holds the
// fixture catalogue and the pipelines and data that made them. The writer that made them (FormatV1FixtureWriter.cs, run
// with QUANTIZED_WRITE_FORMAT_FIXTURES=1) is in commit 8850813; it was removed since later builds write later formats. A new
// format gets a new folder (format-v2/...) written by its own build; format-v1 stays.

using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Microsoft.ML.Quantized.Tests.Serialization;

/// <summary>What kind of pipeline a fixture holds, so the test knows which columns to read and what to recompute.</summary>
public enum FixtureKind
{
    /// <summary>Text -> TokenizeIntoWords -> MapValueToKey -> QuantizedLstm/QuantizedGru transform (Features, FeaturesPerplexity).</summary>
    LanguageModel,
    /// <summary>Text -> tokens -> keys -> binary sequence classifier (Score, Probability, PredictedLabel).</summary>
    BinaryTokens,
    /// <summary>Label -> key; Text -> tokens -> keys -> multiclass sequence classifier; PredictedLabel -> value.</summary>
    MulticlassTokens,
    /// <summary>Label -> key; float frames -> multiclass sequence classifier; PredictedLabel -> value.</summary>
    MulticlassFrames,
}

/// <summary>One committed model: its zip, what it holds, its input rows and the outputs the writing build computed.</summary>
public sealed class FormatFixture
{
    public string Name { get; set; } = "";
    public FixtureKind Kind { get; set; }
    public string Description { get; set; } = "";
    public string Zip { get; set; } = "";
    public string WrittenBy { get; set; } = "";
    public int ModelFileFormatVersion { get; set; }
    public List<FixtureRow> Rows { get; set; } = [];
}

/// <summary>One input row and its expected outputs (only the fields of the fixture's kind are set).</summary>
public sealed class FixtureRow
{
    // Inputs.
    public string? Text { get; set; }
    public string? Label { get; set; }
    public bool? BinaryLabel { get; set; }
    public float[]? Frames { get; set; }

    // Language model outputs.
    public float[]? Features { get; set; }
    public float? Perplexity { get; set; }

    // Binary classifier outputs.
    public float? Score { get; set; }
    public float? Probability { get; set; }
    public bool? PredictedBinaryLabel { get; set; }

    // Multiclass outputs.
    public float[]? Scores { get; set; }
    public string? PredictedLabel { get; set; }
}

/// <summary>The fixtures: names, data, pipelines, files.</summary>
internal static class FormatV1Fixtures
{
    public const string Folder = "format-v1";
    public const string FrameColumn = "Frames";
    public const int FrameSize = 2;
    public const int FrameSteps = 4;
    public const int FrameLength = FrameSize * FrameSteps;

    public const string LmLstm = "lm-lstm-twn-batchshared";
    public const string LmGru = "lm-gru-lsq-btq-slope";
    public const string BinaryGru = "binary-gru-twn-batchperstep";
    public const string MulticlassLstm = "multiclass-lstm-alt2-weightnorm";
    public const string MulticlassFrames = "multiclass-frames-lstm-uniform3row-layernorm";

    public static readonly string[] Names = [LmLstm, LmGru, BinaryGru, MulticlassLstm, MulticlassFrames];

    /// <summary>Float JSON written round-trip exact (shortest form that parses back to the same float); NaN allowed.</summary>
    public static JsonSerializerOptions Json { get; } = new()
    {
        WriteIndented = true,
        Converters = { new JsonStringEnumConverter() },
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    // ---- ML.NET row types ----

    public sealed class TextRow
    {
        public string Text { get; set; } = "";
        public bool Label { get; set; }
    }

    public sealed class TextClassRow
    {
        public string Text { get; set; } = "";
        public string Label { get; set; } = "";
    }

    public sealed class FrameRow
    {
        [VectorType(FrameLength)]
        public float[] Frames { get; set; } = [];
        public string Label { get; set; } = "";
    }

    // ---- data (invented) ----

    private static readonly (string Text, string Topic)[] Sentences =
    [
        ("the cat sat on the mat", "animal"), ("a dog ran in the park", "animal"), ("the bird sang at dawn", "animal"),
        ("the dog sat on the rug", "animal"), ("we ate warm bread today", "food"), ("they drank cold milk", "food"),
        ("i baked a sweet cake", "food"), ("we ate the red apple", "food"), ("rain fell all night", "weather"),
        ("the wind was cold today", "weather"), ("snow fell on the park", "weather"), ("the sun was warm at dawn", "weather"),
    ];

    /// <summary>Training rows: every sentence <paramref name="repeats"/> times, in a seeded shuffled order.</summary>
    public static (string Text, string Topic)[] TrainingSentences(int repeats, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Repeat(Sentences, repeats).SelectMany(s => s).OrderBy(_ => random.Next()).ToArray();
    }

    /// <summary>Scoring rows of the word models: seen sentences, a reordered one, a one-word and a long row (all words known).</summary>
    public static readonly string[] ScoringTexts =
    [
        "the cat sat on the mat", "we ate warm bread today", "rain fell all night", "the mat sat on the cat",
        "dog", "the dog ran in the park at dawn the bird sang",
    ];

    /// <summary>Extra scoring rows of the language model that drops unknown keys: words never seen in training.</summary>
    public static readonly string[] ScoringTextsWithUnknownWords = ["the zebra sat on the mat", "we ate purple bread"];

    /// <summary>Frame sequences of three shapes (rising, falling, alternating) with seeded noise.</summary>
    public static FrameRow[] FrameRows(int count, int seed)
    {
        var random = new Random(seed);
        var rows = new FrameRow[count];
        for (int i = 0; i < count; i++)
        {
            int label = i % 3;
            var frames = new float[FrameLength];
            for (int t = 0; t < FrameSteps; t++)
            {
                float level = label switch { 0 => t / 3f, 1 => 1 - t / 3f, _ => t % 2 };
                frames[t * FrameSize] = level + (float)(random.NextDouble() - 0.5) * 0.3f;
                frames[t * FrameSize + 1] = (float)Math.Round(random.NextDouble() - 0.5, 3);
            }
            rows[i] = new FrameRow { Frames = frames, Label = label switch { 0 => "rising", 1 => "falling", _ => "alternating" } };
        }
        return rows;
    }

    // ---- pipelines (what the writer fitted) ----

    private static TrainingOptions LmTraining() => new()
    {
        Epochs = 6, BatchSize = 4, SequenceLength = 8, Optimizer = OptimizerKind.Adam, LearningRate = 0.01,
        LearningRateDecay = 1, GradientClipNorm = 1,
    };

    public static IEstimator<ITransformer> Pipeline(MLContext ml, string name)
    {
        var tokens = ml.Transforms.Text.TokenizeIntoWords("Tokens", "Text").Append(ml.Transforms.Conversion.MapValueToKey("Tokens"));
        switch (name)
        {
            case LmLstm:
            {
                var options = new QuantizedRecurrentLanguageModelOptions
                {
                    Model = new LanguageModelOptions
                    {
                        EmbeddingSize = 8,
                        Recurrent = new QuantizedRecurrentOptions
                        {
                            HiddenSize = 8,
                            WeightQuantizer = QuantizerRegistry.Parse("twn"),
                            Normalization = RecurrentNormalization.BatchShared,
                        },
                    },
                    Training = LmTraining(),
                };
                return tokens.Append(ml.Transforms.QuantizedLstm("Features", "Tokens", options));
            }
            case LmGru:
            {
                var options = new QuantizedRecurrentLanguageModelOptions
                {
                    Model = new LanguageModelOptions
                    {
                        EmbeddingSize = 6,
                        Recurrent = new QuantizedRecurrentOptions
                        {
                            HiddenSize = 16,
                            WeightQuantizer = QuantizerRegistry.Parse("uniform4-lsq"),
                            ActivationQuantizer = QuantizerRegistry.Parse("btq"),
                            Slopes = ActivationSlopes.All(0.75),
                        },
                    },
                    Training = LmTraining(),
                    UnknownTokens = UnknownTokenHandling.Skip, // written as SkipUnknownKeys = true by the first format's build
                };
                return tokens.Append(ml.Transforms.QuantizedGru("Features", "Tokens", options));
            }
            case BinaryGru:
            {
                var options = ClassifierOptions("Tokens", "twn", RecurrentNormalization.BatchPerStep);
                options.Model.Recurrent.MaxNormalizedSteps = 5; // rows longer than 5 tokens reuse the last step's statistics
                return tokens.Append(ml.BinaryClassification.Trainers.QuantizedGru(options));
            }
            case MulticlassLstm:
                return ml.Transforms.Conversion.MapValueToKey("Label")
                    .Append(tokens)
                    .Append(ml.MulticlassClassification.Trainers.QuantizedLstm(ClassifierOptions("Tokens", "alt2", RecurrentNormalization.Weight)))
                    .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"));
            case MulticlassFrames:
            {
                var options = ClassifierOptions(FrameColumn, "uniform3-row", RecurrentNormalization.Layer);
                options.FrameSize = FrameSize;
                return ml.Transforms.Conversion.MapValueToKey("Label")
                    .Append(ml.MulticlassClassification.Trainers.QuantizedLstm(options))
                    .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"));
            }
            default:
                throw new ArgumentException($"Unknown fixture '{name}'.", nameof(name));
        }
    }

    private static SequenceClassifierTrainerOptions ClassifierOptions(string features, string weights, RecurrentNormalization normalization)
    {
        var options = new SequenceClassifierTrainerOptions { FeatureColumnName = features };
        options.Model.EmbeddingSize = 8;
        options.Model.Recurrent.HiddenSize = 8;
        options.Model.Recurrent.WeightQuantizer = QuantizerRegistry.Parse(weights);
        options.Model.Recurrent.Normalization = normalization;
        options.Training.Epochs = 6;
        options.Training.BatchSize = 8;
        options.Training.LearningRate = 0.02;
        return options;
    }

    public static string Description(string name) => name switch
    {
        LmLstm => "QuantizedLstm language-model transform: hidden 8, embedding 8, TWN weights, batch normalization shared across steps; Adam, 6 epochs.",
        LmGru => "QuantizedGru language-model transform: hidden 16, embedding 6, uniform4-lsq weights (learned step), btq activations, slopes 0.75, SkipUnknownKeys; Adam, 6 epochs.",
        BinaryGru => "Binary QuantizedGru sequence classifier on token keys: hidden 8, embedding 8, TWN weights, per-step batch normalization (5 steps); Adam, 6 epochs.",
        MulticlassLstm => "Multiclass (3) QuantizedLstm sequence classifier on token keys: hidden 8, embedding 8, alt2 weights, weight normalization; PredictedLabel mapped back to text; Adam, 6 epochs.",
        MulticlassFrames => "Multiclass (3) QuantizedLstm sequence classifier on float frames (4 steps of 2): hidden 8, uniform3-row weights, layer normalization; PredictedLabel mapped back to text; Adam, 6 epochs.",
        _ => throw new ArgumentException($"Unknown fixture '{name}'.", nameof(name)),
    };

    public static FixtureKind KindOf(string name) => name switch
    {
        LmLstm or LmGru => FixtureKind.LanguageModel,
        BinaryGru => FixtureKind.BinaryTokens,
        MulticlassLstm => FixtureKind.MulticlassTokens,
        MulticlassFrames => FixtureKind.MulticlassFrames,
        _ => throw new ArgumentException($"Unknown fixture '{name}'.", nameof(name)),
    };

    /// <summary>The training data of a fixture.</summary>
    public static IDataView TrainingData(MLContext ml, string name) => KindOf(name) switch
    {
        FixtureKind.LanguageModel or FixtureKind.BinaryTokens => ml.Data.LoadFromEnumerable(
            TrainingSentences(4, seed: 11).Select(s => new TextRow { Text = s.Text, Label = s.Topic == "animal" })),
        FixtureKind.MulticlassTokens => ml.Data.LoadFromEnumerable(
            TrainingSentences(4, seed: 12).Select(s => new TextClassRow { Text = s.Text, Label = s.Topic })),
        _ => ml.Data.LoadFromEnumerable(FrameRows(60, seed: 13)),
    };

    /// <summary>The scoring rows of a fixture (inputs only).</summary>
    public static List<FixtureRow> ScoringRows(string name)
    {
        var topic = Sentences.ToDictionary(s => s.Text, s => s.Topic);
        string TopicOf(string text) => topic.TryGetValue(text, out var t) ? t : "animal";
        return KindOf(name) switch
        {
            FixtureKind.LanguageModel => ScoringTexts.Concat(name == LmGru ? ScoringTextsWithUnknownWords : [])
                .Select(t => new FixtureRow { Text = t, BinaryLabel = TopicOf(t) == "animal" }).ToList(),
            FixtureKind.BinaryTokens => ScoringTexts.Select(t => new FixtureRow { Text = t, BinaryLabel = TopicOf(t) == "animal" }).ToList(),
            FixtureKind.MulticlassTokens => ScoringTexts.Select(t => new FixtureRow { Text = t, Label = TopicOf(t) }).ToList(),
            _ => FrameRows(6, seed: 14).Select(r => new FixtureRow { Frames = r.Frames, Label = r.Label }).ToList(),
        };
    }

    /// <summary>The scoring rows as an ML.NET data view of the fixture's row type.</summary>
    public static IDataView Inputs(MLContext ml, FixtureKind kind, IReadOnlyList<FixtureRow> rows) => kind switch
    {
        FixtureKind.LanguageModel or FixtureKind.BinaryTokens => ml.Data.LoadFromEnumerable(
            rows.Select(r => new TextRow { Text = r.Text!, Label = r.BinaryLabel ?? false }).ToList()),
        FixtureKind.MulticlassTokens => ml.Data.LoadFromEnumerable(rows.Select(r => new TextClassRow { Text = r.Text!, Label = r.Label! }).ToList()),
        _ => ml.Data.LoadFromEnumerable(rows.Select(r => new FrameRow { Frames = r.Frames!, Label = r.Label! }).ToList()),
    };

    /// <summary>Scores <paramref name="inputs"/> with <paramref name="model"/> and returns the rows with the outputs of their kind filled in.</summary>
    public static List<FixtureRow> Score(ITransformer model, FixtureKind kind, IReadOnlyList<FixtureRow> inputs, MLContext ml)
    {
        var output = model.Transform(Inputs(ml, kind, inputs));
        var rows = inputs.Select(r => new FixtureRow { Text = r.Text, Label = r.Label, BinaryLabel = r.BinaryLabel, Frames = r.Frames }).ToList();
        switch (kind)
        {
            case FixtureKind.LanguageModel:
            {
                var features = output.GetColumn<float[]>("Features").ToArray();
                var perplexity = output.GetColumn<float>("FeaturesPerplexity").ToArray();
                for (int i = 0; i < rows.Count; i++) { rows[i].Features = features[i]; rows[i].Perplexity = perplexity[i]; }
                break;
            }
            case FixtureKind.BinaryTokens:
            {
                var score = output.GetColumn<float>("Score").ToArray();
                var probability = output.GetColumn<float>("Probability").ToArray();
                var predicted = output.GetColumn<bool>("PredictedLabel").ToArray();
                for (int i = 0; i < rows.Count; i++) { rows[i].Score = score[i]; rows[i].Probability = probability[i]; rows[i].PredictedBinaryLabel = predicted[i]; }
                break;
            }
            default:
            {
                var scores = output.GetColumn<float[]>("Score").ToArray();
                var predicted = output.GetColumn<string>("PredictedLabel").ToArray();
                for (int i = 0; i < rows.Count; i++) { rows[i].Scores = scores[i]; rows[i].PredictedLabel = predicted[i]; }
                break;
            }
        }
        return rows;
    }

    // ---- files ----

    /// <summary>The committed fixtures as copied to the test output (TestData/** in the test project).</summary>
    public static string OutputDirectory => Path.Combine(AppContext.BaseDirectory, "TestData", Folder);

    /// <summary>The fixtures' folder in the source tree (the writer's target): next to this source file's project.</summary>
    public static string SourceDirectory([CallerFilePath] string thisFile = "")
    {
        // Prefer walking up from the output folder to the test project (robust to path maps); fall back to this file's path.
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Microsoft.ML.Quantized.Tests.csproj")))
                return Path.Combine(dir.FullName, "TestData", Folder);
        }
        return Path.Combine(Path.GetDirectoryName(Path.GetDirectoryName(thisFile))!, "TestData", Folder);
    }

    public static string ZipName(string name) => name + ".zip";

    public static string ExpectedName(string name) => name + ".expected.json";

    public static FormatFixture ReadExpected(string directory, string name)
    {
        var path = Path.Combine(directory, ExpectedName(name));
        if (!File.Exists(path))
            throw new FileNotFoundException($"Fixture file {path} is missing: TestData/{Folder}/** must be copied to the test output (see the test .csproj).", path);
        return JsonSerializer.Deserialize<FormatFixture>(File.ReadAllText(path), Json) ?? throw new InvalidDataException($"{path} is empty.");
    }

    public static string Format(float v) => v.ToString("R", CultureInfo.InvariantCulture);
}
