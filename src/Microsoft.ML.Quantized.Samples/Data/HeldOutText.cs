using System.Diagnostics;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Microsoft.ML.Quantized.Samples;

/// <summary>One text to classify: its words joined by spaces, and its label (true = positive, e.g. spam).</summary>
internal sealed class LabeledText
{
    public string Text { get; set; } = "";

    public bool Label { get; set; }
}

/// <summary>
/// How many tokens of a scored part had no key in the training part's key mapping (<c>MapValueToKey</c> gives them
/// key 0), and how many had a key but were seen in training fewer than the classifier's <c>MinimumTokenCount</c>
/// times (<see cref="Rare"/>; with <see cref="UnknownTokenHandling.MapToUnknown"/> the classifier reads both as
/// <c>&lt;unk&gt;</c>).
/// </summary>
internal sealed record UnseenTokens(long Tokens, long Unseen, long Rare, int Rows, int RowsWithUnseen)
{
    /// <summary>Share of the tokens that are unseen (key 0).</summary>
    public double UnseenShare => Tokens == 0 ? 0 : (double)Unseen / Tokens;

    /// <summary>Share of the tokens the classifier reads as <c>&lt;unk&gt;</c>: unseen or rare.</summary>
    public double UnknownShare => Tokens == 0 ? 0 : (double)(Unseen + Rare) / Tokens;

    /// <summary>Share of the rows holding at least one unseen token.</summary>
    public double RowShare => Rows == 0 ? 0 : (double)RowsWithUnseen / Rows;
}

/// <summary>
/// One classifier trained on one part and scored on another: the test metrics, the size of the whole pipeline saved
/// with <c>mlContext.Model.Save</c>, the training time, and for the quantized sequence classifiers their packed size
/// and epoch history.
/// </summary>
internal sealed record HeldOutResult(CalibratedBinaryClassificationMetrics Metrics, long ZipBytes, double Seconds, ModelSizeReport? Size, IReadOnlyList<EpochSummary> History);

/// <summary>
/// Text classification the way an ML.NET user writes it, with the key mapping fitted on the training part only, so
/// the scored part holds words it has never seen: <c>TokenizeIntoWords -> MapValueToKey</c> (fitted on the training
/// rows) <c>-> BinaryClassification.Trainers.QuantizedGru/QuantizedLstm</c>, and ML.NET's own baseline
/// <c>FeaturizeText -> SdcaLogisticRegression</c>; both scored with <c>BinaryClassification.Evaluate</c>.
/// </summary>
internal static class HeldOutText
{
    /// <summary>The token key column the key mapping writes and the sequence classifiers read.</summary>
    public const string TokensColumn = "Tokens";

    /// <summary>The texts' words are already split: <c>TokenizeIntoWords</c> cuts at spaces only.</summary>
    private static readonly char[] Separators = [' '];

    /// <summary><c>TokenizeIntoWords</c> (on spaces) then <c>MapValueToKey</c>, fitted on <paramref name="train"/> only.</summary>
    public static ITransformer FitKeyMapping(MLContext ml, IDataView train) =>
        ml.Transforms.Text.TokenizeIntoWords(TokensColumn, nameof(LabeledText.Text), Separators)
            .Append(ml.Transforms.Conversion.MapValueToKey(TokensColumn))
            .Fit(train);

    /// <summary>
    /// Counts the tokens of <paramref name="scored"/> that <paramref name="keyMapping"/> (fitted on <paramref name="train"/>)
    /// has no key for, and those seen in <paramref name="train"/> fewer than <paramref name="minimumCount"/> times.
    /// </summary>
    public static UnseenTokens CountUnseen(ITransformer keyMapping, IDataView train, IDataView scored, int minimumCount)
    {
        var trainCounts = new Dictionary<uint, long>();
        ForEachRow(keyMapping.Transform(train), keys =>
        {
            foreach (var key in keys) trainCounts[key] = trainCounts.GetValueOrDefault(key) + 1;
        });
        long tokens = 0, unseen = 0, rare = 0;
        int rows = 0, rowsWithUnseen = 0;
        ForEachRow(keyMapping.Transform(scored), keys =>
        {
            int missing = 0;
            foreach (var key in keys)
            {
                if (key == 0) missing++;
                else if (trainCounts.GetValueOrDefault(key) < minimumCount) rare++;
            }
            tokens += keys.Length;
            unseen += missing;
            rows++;
            if (missing > 0) rowsWithUnseen++;
        });
        return new UnseenTokens(tokens, unseen, rare, rows, rowsWithUnseen);
    }

    /// <summary>
    /// Trains a sequence classifier made by <paramref name="trainer"/> from <paramref name="options"/> on the keys of
    /// <paramref name="train"/> (validation loss on <paramref name="valid"/>'s, when given), appends it to
    /// <paramref name="keyMapping"/> and scores <paramref name="test"/> with the whole pipeline. Frees the model's tensors.
    /// </summary>
    public static HeldOutResult Sequence(MLContext ml, ITransformer keyMapping, Func<SequenceClassifierTrainerOptions, QuantizedSequenceBinaryTrainer> trainer,
        SequenceClassifierTrainerOptions options, IDataView train, IDataView? valid, IDataView test)
    {
        options = options.Clone();
        options.FeatureColumnName = TokensColumn;
        options.LabelColumnName = nameof(LabeledText.Label);
        options.ValidationData = valid is null ? null : keyMapping.Transform(valid);
        var clock = Stopwatch.StartNew();
        var predictor = trainer(options).Fit(keyMapping.Transform(train));
        double seconds = clock.Elapsed.TotalSeconds;
        try
        {
            var (metrics, bytes) = Score(ml, new TransformerChain<ITransformer>(keyMapping, predictor), train, test);
            return new HeldOutResult(metrics, bytes, seconds, predictor.Model.SizeReport(), predictor.Model.History.ToArray());
        }
        finally
        {
            predictor.Model.Dispose();
        }
    }

    /// <summary>
    /// ML.NET's standard text classifier: <c>FeaturizeText</c> (defaults: word 1-2-grams and character 1-3-grams, its
    /// dictionary fitted on <paramref name="train"/>) then <c>SdcaLogisticRegression</c>, scored on <paramref name="test"/>.
    /// </summary>
    public static HeldOutResult Sdca(MLContext ml, IDataView train, IDataView test)
    {
        var pipeline = ml.Transforms.Text.FeaturizeText("Features", nameof(LabeledText.Text))
            .Append(ml.BinaryClassification.Trainers.SdcaLogisticRegression(labelColumnName: nameof(LabeledText.Label), featureColumnName: "Features"));
        var clock = Stopwatch.StartNew();
        var model = pipeline.Fit(train);
        double seconds = clock.Elapsed.TotalSeconds;
        var (metrics, bytes) = Score(ml, model, train, test);
        return new HeldOutResult(metrics, bytes, seconds, null, []);
    }

    /// <summary>The test metrics of <paramref name="model"/> and the bytes of the zip <c>mlContext.Model.Save</c> writes for it.</summary>
    private static (CalibratedBinaryClassificationMetrics Metrics, long Bytes) Score(MLContext ml, ITransformer model, IDataView train, IDataView test)
    {
        var metrics = ml.BinaryClassification.Evaluate(model.Transform(test), labelColumnName: nameof(LabeledText.Label));
        using var saved = new MemoryStream();
        ml.Model.Save(model, train.Schema, saved);
        return (metrics, saved.Length);
    }

    /// <summary>Calls <paramref name="row"/> with the token keys of every row of <paramref name="keyed"/> (0 = no key).</summary>
    private static void ForEachRow(IDataView keyed, Action<ReadOnlySpan<uint>> row)
    {
        var column = keyed.Schema[TokensColumn];
        using var cursor = keyed.GetRowCursor([column]);
        var getter = cursor.GetGetter<VBuffer<uint>>(column);
        VBuffer<uint> keys = default;
        while (cursor.MoveNext())
        {
            getter(ref keys);
            row(keys.DenseValues().ToArray());
        }
    }
}
