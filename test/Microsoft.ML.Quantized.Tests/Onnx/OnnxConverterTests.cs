using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Microsoft.ML.Quantized.Tests.MLNet;

namespace Microsoft.ML.Quantized.Tests;

/// <summary>
/// Whole ML.NET pipelines through <c>mlContext.Model.ConvertToOnnx</c> (Microsoft.ML.OnnxConverter 0.23.1 on ML.NET 5.0.x,
/// 0.24.0 on 6.0.x), loaded in ONNX Runtime, one row per run as ML.NET's tokenizer export expects.
/// </summary>
[TestClass]
public sealed class OnnxConverterTests
{
    /// <summary>
    /// Text in, ML.NET's scorer columns out: the graph holds ML.NET's tokenizer and key mapping and our classifier, and
    /// gives ML.NET's own <c>Score</c>, <c>Probability</c> and <c>PredictedLabel</c>, on rows with words never seen in
    /// training too, and the class prior for an empty text; with the last step's state (LSTM) and max pooling (GRU).
    /// </summary>
    [TestMethod]
    [DataRow(false)]
    [DataRow(true)]
    public void A_text_pipeline_converts_to_onnx_and_scores_as_ML_NET(bool gru)
    {
        var ml = new MLContext(seed: 5);
        var train = ml.Data.LoadFromEnumerable(TextData.Rows(240, seed: 1));
        var rows = TextData.RowsWithUnseenWordsAndAnEmptyRow();
        var test = ml.Data.LoadFromEnumerable(rows);
        var options = QuantizedSequenceTrainerTests.Options();
        if (gru) options.Model.Pooling = SequencePooling.Max;
        var model = QuantizedSequenceTrainerTests.BinaryPipeline(ml, options, gru).Fit(train);
        try
        {
            var scored = model.Transform(test);
            var score = scored.GetColumn<float>("Score").ToArray();
            var probability = scored.GetColumn<float>("Probability").ToArray();
            var label = scored.GetColumn<bool>("PredictedLabel").ToArray();
            Assert.IsTrue(label.Distinct().Count() == 2, "the rows get both labels");
            using var onnx = new MemoryStream();
            ml.Model.ConvertToOnnx(model, train, onnx);
            using var session = new InferenceSession(onnx.ToArray());
            // An empty text has no tokens, and ONNX Runtime's graph optimizations (any level) then fail in ML.NET's Binarizer,
            // which ML.NET's converter declares of the key column's shape; unoptimized, the graph gives ML.NET's class prior.
            using var unoptimized = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_DISABLE_ALL };
            using var emptyRowSession = new InferenceSession(onnx.ToArray(), unoptimized);
            for (int r = 0; r < rows.Count; r++)
            {
                var runner = rows[r].Text.Length == 0 ? emptyRowSession : session;
                using var results = runner.Run(Inputs(runner, new()
                {
                    ["Text"] = new DenseTensor<string>(new[] { rows[r].Text }, [1, 1]),
                    ["Label"] = new DenseTensor<bool>(new[] { rows[r].Label }, [1, 1]),
                }));
                Assert.AreEqual(score[r], Single(results, "Score.output"), 1e-4 * Math.Max(Math.Abs(score[r]), 1e-2), $"Score, row {r}: {rows[r].Text}");
                Assert.AreEqual(probability[r], Single(results, "Probability.output"), 1e-4 * Math.Max(probability[r], 1e-3), $"Probability, row {r}");
                Assert.AreEqual(label[r], results.Single(v => v.Name == "PredictedLabel.output").AsTensor<bool>().Single(), $"PredictedLabel, row {r}");
            }
        }
        finally
        {
            QuantizedSequenceTrainerTests.DisposeModel(model);
        }
    }

    /// <summary>
    /// A three-topic text classifier (multiclass, GRU): ML.NET's <c>Score</c> vector and predicted key in ONNX Runtime's
    /// default (optimized) session for every row, unseen words and an empty text included; the empty text gets the
    /// training labels' distribution, counted here from the rows.
    /// </summary>
    [TestMethod]
    public void A_multiclass_text_pipeline_converts_to_onnx_and_scores_as_ML_NET_an_empty_text_included()
    {
        var ml = new MLContext(seed: 5);
        var trainRows = TopicRow.Rows(240, seed: 1);
        var train = ml.Data.LoadFromEnumerable(trainRows);
        List<TopicRow> rows = [.. TopicRow.Rows(12, seed: 2), new() { Text = "the zzzunseen parcel", Topic = "shipping" }, new() { Text = "", Topic = "billing" }];
        var options = QuantizedSequenceTrainerTests.Options(epochs: 4, features: "Tokens");
        var model = ml.Transforms.Conversion.MapValueToKey("Label", nameof(TopicRow.Topic))
            .Append(ml.Transforms.Text.TokenizeIntoWords("Tokens", nameof(TopicRow.Text)))
            .Append(ml.Transforms.Conversion.MapValueToKey("Tokens"))
            .Append(ml.MulticlassClassification.Trainers.QuantizedGru(options))
            .Fit(train);
        try
        {
            var scored = model.Transform(ml.Data.LoadFromEnumerable(rows));
            var scores = scored.GetColumn<float[]>("Score").ToArray();
            var keys = scored.GetColumn<uint>("PredictedLabel").ToArray();
            Assert.HasCount(3, keys[..^1].Distinct().ToArray(), "the rows get all three topics");
            // Keys follow the order in which MapValueToKey first met each topic in the training rows.
            var topics = trainRows.Select(r => r.Topic).Distinct().ToArray();
            var prior = topics.Select(t => trainRows.Count(r => r.Topic == t) / (double)trainRows.Count).ToArray();
            for (int c = 0; c < 3; c++)
                Assert.AreEqual(prior[c], scores[^1][c], 1e-6, $"ML.NET gives the empty text the class prior, class {c}");
            using var onnx = new MemoryStream();
            ml.Model.ConvertToOnnx(model, train, onnx);
            using var session = new InferenceSession(onnx.ToArray());
            for (int r = 0; r < rows.Count; r++)
            {
                using var results = session.Run(Inputs(session, new()
                {
                    ["Text"] = new DenseTensor<string>(new[] { rows[r].Text }, [1, 1]),
                    ["Topic"] = new DenseTensor<string>(new[] { rows[r].Topic }, [1, 1]),
                }));
                var actual = results.Single(v => v.Name == "Score.output").AsTensor<float>().ToArray();
                Assert.HasCount(3, actual, $"row {r}");
                for (int c = 0; c < 3; c++)
                    Assert.AreEqual(scores[r][c], actual[c], 1e-4 * Math.Max(scores[r][c], 1e-3), $"row {r} ('{rows[r].Text}') class {c}");
                Assert.AreEqual(keys[r], results.Single(v => v.Name == "PredictedLabel.output").AsTensor<uint>().Single(), $"PredictedLabel, row {r}");
            }
        }
        finally
        {
            QuantizedSequenceTrainerTests.DisposeModel(model);
        }
    }

    /// <summary>
    /// A multiclass classifier on float frames with a mean-pooled head: ML.NET's <c>Score</c> vector and predicted key. An
    /// opset below the classifier's 11 is refused by ML.NET's own check, naming the classifier.
    /// </summary>
    [TestMethod]
    public void A_frame_pipeline_with_a_pooled_multiclass_classifier_converts_to_onnx_and_scores_as_ML_NET()
    {
        var ml = new MLContext(seed: 5);
        var train = ml.Data.LoadFromEnumerable(FrameData.Rows(300, seed: 1));
        var rows = FrameData.Rows(20, seed: 2).ToList();
        var options = QuantizedSequenceTrainerTests.Options(epochs: 6, frameSize: FrameData.FrameSize);
        options.Model.Pooling = SequencePooling.Mean;
        var model = QuantizedSequenceTrainerTests.MulticlassPipeline(ml, options).Fit(train);
        try
        {
            var scored = model.Transform(ml.Data.LoadFromEnumerable(rows));
            var scores = scored.GetColumn<float[]>("Score").ToArray();
            var keys = scored.GetColumn<uint>("PredictedLabel").ToArray();
            var tooOld = Assert.Throws<Exception>(() => ml.Model.ConvertToOnnx(model, train, 10, new MemoryStream()));
            StringAssert.Contains(tooOld.Message, "quantized sequence classifier's minimum OpSet version requirement: 11");
            using var onnx = new MemoryStream();
            ml.Model.ConvertToOnnx(model, train, onnx);
            using var session = new InferenceSession(onnx.ToArray());
            for (int r = 0; r < rows.Count; r++)
            {
                using var results = session.Run(Inputs(session, new()
                {
                    ["Features"] = new DenseTensor<float>(rows[r].Features, [1, FrameData.Length]),
                    ["Label"] = new DenseTensor<string>(new[] { rows[r].Label }, [1, 1]),
                }));
                var actual = results.Single(v => v.Name == "Score.output").AsTensor<float>().ToArray();
                Assert.AreEqual(scores[r].Length, actual.Length);
                for (int c = 0; c < actual.Length; c++)
                    Assert.AreEqual(scores[r][c], actual[c], 1e-4 * Math.Max(scores[r][c], 1e-3), $"row {r} class {c}");
                Assert.AreEqual(keys[r], results.Single(v => v.Name == "PredictedLabel.output").AsTensor<uint>().Single(), $"PredictedLabel, row {r}");
            }
        }
        finally
        {
            QuantizedSequenceTrainerTests.DisposeModel(model);
        }
    }

    /// <summary>A cell that needs a Scan subgraph cannot go through ML.NET's converter: the error says why and what to do.</summary>
    [TestMethod]
    public void A_layer_normalized_classifier_is_refused_by_ConvertToOnnx_with_the_reason_and_the_way_out()
    {
        var ml = new MLContext(seed: 5);
        var train = ml.Data.LoadFromEnumerable(TextData.Rows(60, seed: 1));
        var options = QuantizedSequenceTrainerTests.Options(epochs: 1);
        options.Model.Recurrent.Normalization = RecurrentNormalization.Layer;
        var model = QuantizedSequenceTrainerTests.BinaryPipeline(ml, options).Fit(train);
        try
        {
            var e = Assert.ThrowsExactly<InvalidOperationException>(() => ml.Model.ConvertToOnnx(model, train, new MemoryStream()));
            StringAssert.Contains(e.Message, "layer 0 has layer normalization");
            StringAssert.Contains(e.Message, "Scan");
            StringAssert.Contains(e.Message, "ExportToOnnx");
            StringAssert.Contains(e.Message, "RecurrentNormalization None or Weight");
        }
        finally
        {
            QuantizedSequenceTrainerTests.DisposeModel(model);
        }
    }

    /// <summary>Every input the converted graph declares, from <paramref name="values"/>.</summary>
    private static List<NamedOnnxValue> Inputs(InferenceSession session, Dictionary<string, object> values) =>
        session.InputMetadata.Keys.Select(name => values[name] switch
        {
            DenseTensor<string> s => NamedOnnxValue.CreateFromTensor(name, s),
            DenseTensor<bool> b => NamedOnnxValue.CreateFromTensor(name, b),
            DenseTensor<float> f => NamedOnnxValue.CreateFromTensor(name, f),
            var other => throw new ArgumentException($"No input of {other.GetType().Name}."),
        }).ToList();

    private static float Single(IEnumerable<DisposableNamedOnnxValue> results, string name) =>
        results.Single(v => v.Name == name).AsTensor<float>().Single();

    /// <summary>A support ticket in one of three queues, named by one or two cue words among filler words.</summary>
    public sealed class TopicRow
    {
        private static readonly string[] Topics = ["billing", "shipping", "technical"];
        private static readonly string[][] Cues = [["invoice", "refund", "charged", "payment"], ["parcel", "courier", "tracking", "delivery"], ["crash", "error", "login", "password"]];
        private static readonly string[] Filler = ["my", "the", "is", "not", "please", "help", "again", "it"];

        public string Text { get; set; } = "";
        public string Topic { get; set; } = "";

        public static List<TopicRow> Rows(int count, int seed)
        {
            var random = new Random(seed);
            return Enumerable.Range(0, count).Select(_ =>
            {
                int c = random.Next(3);
                var words = Enumerable.Range(0, 2 + random.Next(4)).Select(_ => Filler[random.Next(Filler.Length)]).ToList();
                words.Insert(random.Next(words.Count + 1), Cues[c][random.Next(Cues[c].Length)]);
                return new TopicRow { Text = string.Join(' ', words), Topic = Topics[c] };
            }).ToList();
        }
    }
}
