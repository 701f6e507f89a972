using Microsoft.ML;
using Microsoft.ML.Quantized.Samples;

namespace Microsoft.ML.Quantized.Tests.Samples;

/// <summary>
/// The <c>spam-heldout</c> benchmark's pipeline (Data/HeldOutText.cs): <c>TokenizeIntoWords -> MapValueToKey</c> fitted
/// on the training part only, a quantized sequence classifier behind it, the test part scored and evaluated although it
/// holds words the key mapping never saw; and the unseen-token count the benchmark reports.
/// </summary>
[TestClass]
public sealed class HeldOutTextTests
{
    // Training part: 16 spam and 16 ham rows over 8 words, and one spam row with "bonus", seen once (rare at MinimumTokenCount 2).
    private static readonly LabeledText[] Train =
    [
        .. Enumerable.Range(0, 16).SelectMany(_ => new[] { Row("win cash prize now", true), Row("lunch meeting at noon", false) }),
        Row("win cash bonus", true),
    ];

    // Validation part: "lottery" is unseen too (validation data is read through the same key mapping).
    private static readonly LabeledText[] Valid = [Row("win cash lottery now", true), Row("meeting at noon", false)];

    // Test part, by hand: 3 + 3 + 2 + 2 + 0 = 10 tokens; unseen (key 0): "free", "zebra", "quagga" = 3, in rows 0 and 2;
    // rare: "bonus" = 1. Row 2 holds only unseen words, row 4 no words at all.
    private static readonly LabeledText[] Test =
    [
        Row("win free cash", true),
        Row("lunch at noon", false),
        Row("zebra quagga", true),
        Row("bonus meeting", false),
        Row("", false),
    ];

    [TestMethod]
    public void Unseen_test_tokens_are_counted_against_the_training_part_only()
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(Train);
        var keyMapping = HeldOutText.FitKeyMapping(ml, train);
        var unseen = HeldOutText.CountUnseen(keyMapping, train, ml.Data.LoadFromEnumerable(Test), minimumCount: 2);
        Assert.AreEqual(new UnseenTokens(Tokens: 10, Unseen: 3, Rare: 1, Rows: 5, RowsWithUnseen: 2), unseen);
        Assert.AreEqual(0.3, unseen.UnseenShare, 1e-15);
        Assert.AreEqual(0.4, unseen.UnknownShare, 1e-15);
        Assert.AreEqual(0.4, unseen.RowShare, 1e-15);
        // Against its own training rows nothing is unseen, and at minimum count 1 nothing is rare.
        Assert.AreEqual(new UnseenTokens(131, 0, 0, 33, 0), HeldOutText.CountUnseen(keyMapping, train, train, minimumCount: 1));
    }

    [TestMethod]
    public void Ternary_gru_and_lstm_score_a_test_part_with_unseen_words_and_the_baseline_runs_on_the_same_parts()
    {
        var ml = new MLContext(seed: 1);
        var (train, valid, test) = (ml.Data.LoadFromEnumerable(Train), ml.Data.LoadFromEnumerable(Valid), ml.Data.LoadFromEnumerable(Test));
        var keyMapping = HeldOutText.FitKeyMapping(ml, train);
        var options = new SequenceClassifierTrainerOptions
        {
            Model = new SequenceClassifierOptions
            {
                QuantizeEmbeddingAndHead = true,
                Recurrent = new QuantizedRecurrentOptions
                {
                    HiddenSize = 8, Normalization = RecurrentNormalization.Weight,
                    WeightQuantizer = new QuantizerOptions { Kind = QuantizerKind.TernaryWeightNet },
                },
            },
            Training = new TrainingOptions { Epochs = 3, BatchSize = 8, Optimizer = OptimizerKind.Adam, LearningRate = 0.01 },
        };
        foreach (var lstm in new[] { false, true })
        {
            var context = new MLContext(seed: 1);
            var result = HeldOutText.Sequence(context, keyMapping,
                lstm ? context.BinaryClassification.Trainers.QuantizedLstm : context.BinaryClassification.Trainers.QuantizedGru, options, train, valid, test);
            string what = lstm ? "LSTM" : "GRU";
            var m = result.Metrics;
            Assert.IsTrue(m.Accuracy is >= 0 and <= 1 && m.AreaUnderRocCurve is >= 0 and <= 1 && double.IsFinite(m.LogLoss), $"{what}: {m.Accuracy} {m.AreaUnderRocCurve} {m.LogLoss}");
            // ML.NET's evaluator counts every scored row: 2 spam, 3 ham (the rows of unseen words and the empty row included).
            Assert.AreEqual(2, (int)(m.ConfusionMatrix.Counts[0][0] + m.ConfusionMatrix.Counts[0][1]), what);
            Assert.AreEqual(3, (int)(m.ConfusionMatrix.Counts[1][0] + m.ConfusionMatrix.Counts[1][1]), what);
            Assert.HasCount(3, result.History, what);
            Assert.IsTrue(result.History.All(h => double.IsFinite(h.ValidationLoss)), $"{what}: the validation part, unseen word and all, is scored every epoch");
            // Ternary codes are 2 bits; the scales add a little on matrices this small.
            Assert.IsGreaterThan(0L, result.Size!.QuantizedParameterCount, what);
            Assert.IsTrue(result.Size.BitsPerQuantizedWeight is >= 2 and < 3, $"{what}: {result.Size.BitsPerQuantizedWeight} bits per weight");
            Assert.IsGreaterThan(result.Size.PackedBytes, result.ZipBytes, $"{what}: the zip holds the packed model and the key mapping");
        }
        options.UnknownTokens = UnknownTokenHandling.Strict;
        var strict = new MLContext(seed: 1);
        // The test part really holds keys the model was not trained on: a strict model rejects it (ML.NET's cursors may wrap the error).
        var error = Assert.Throws<Exception>(() => HeldOutText.Sequence(strict, keyMapping, strict.BinaryClassification.Trainers.QuantizedGru, options, train, null, test));
        StringAssert.Contains(error.ToString(), ": key 0, a missing value");
        StringAssert.Contains(error.ToString(), "UnknownTokens = Strict");

        var baseline = HeldOutText.Sdca(new MLContext(seed: 1), train, test);
        Assert.AreEqual(5, (int)baseline.Metrics.ConfusionMatrix.Counts.Sum(r => r.Sum()));
        Assert.IsNull(baseline.Size);
        Assert.IsGreaterThan(0, baseline.ZipBytes);
    }

    private static LabeledText Row(string text, bool label) => new() { Text = text, Label = label };
}
