using Microsoft.ML.Data;
using Microsoft.ML.Quantized.Tests.MLNet;

namespace Microsoft.ML.Quantized.Tests;

/// <summary>An exported classifier scores inside an ML.NET pipeline through <c>ApplyOnnxModel</c> (Microsoft.ML.OnnxTransformer).</summary>
[TestClass]
public sealed class OnnxMLNetTests
{
    private const int Time = 8;

    private sealed class Row
    {
        [VectorType(Time)] public long[] tokens { get; set; } = [];
        [VectorType(1)] public long[] lengths { get; set; } = [];
    }

    private sealed class Scored
    {
        public float[] probabilities { get; set; } = [];
    }

    /// <summary>
    /// The ML.NET model parameters' export reads the key column's values: ONNX Runtime on the keys of rows with unseen words
    /// gives ML.NET's own <c>Probability</c> (its transformer scores with the engine), and on an empty row (length 0) the
    /// class prior, as ML.NET.
    /// </summary>
    [TestMethod]
    public void A_classifier_exported_from_its_ML_NET_model_reads_the_key_column_unseen_words_included()
    {
        var ml = new MLContext(seed: 5);
        var train = ml.Data.LoadFromEnumerable(TextData.Rows(240, seed: 1));
        var rows = TextData.RowsWithUnseenWordsAndAnEmptyRow();
        var test = ml.Data.LoadFromEnumerable(rows);
        var model = QuantizedSequenceTrainerTests.BinaryPipeline(ml, QuantizedSequenceTrainerTests.Options(), gru: true).Fit(train);
        try
        {
            var chain = ((IEnumerable<ITransformer>)model).ToList();
            var keys = chain.Take(2).Aggregate(test, (data, t) => t.Transform(data)).GetColumn<uint[]>("Tokens").ToArray();
            Assert.IsTrue(keys[^2].All(k => k == 0) && keys[^3].Contains(0u) && keys[^1].Length == 0, "rows with words the key mapping never saw (key 0), and an empty row");
            var expected = model.Transform(test).GetColumn<float>("Probability").ToArray();
            var parameters = ((ISingleFeaturePredictionTransformer<SequenceClassifierBinaryModelParameters>)chain[^1]).Model;
            foreach (var format in new[] { OnnxWeightFormat.Float, OnnxWeightFormat.QuantizeDequantize })
            {
                using var onnx = new MemoryStream();
                parameters.ExportToOnnx(onnx, new OnnxExportOptions { WeightFormat = format });
                var actual = OnnxRuntimeScoring.ClassifyTokens(onnx.ToArray(), keys.Select(k => k.Select(v => (int)v).ToArray()).ToArray(), input: "keys");
                for (int r = 0; r < expected.Length; r++)
                    Assert.AreEqual(expected[r], actual[r][1], 1e-4 * Math.Max(expected[r], 1e-3), $"{format}, row {r}");
            }
        }
        finally
        {
            QuantizedSequenceTrainerTests.DisposeModel(model);
        }
    }

    [TestMethod]
    public void A_classifier_trained_to_skip_unknown_words_is_not_exported_from_its_ML_NET_model()
    {
        var ml = new MLContext(seed: 5);
        var options = QuantizedSequenceTrainerTests.Options(epochs: 1);
        options.UnknownTokens = UnknownTokenHandling.Skip;
        var model = QuantizedSequenceTrainerTests.BinaryPipeline(ml, options, gru: true).Fit(ml.Data.LoadFromEnumerable(TextData.Rows(60, seed: 1)));
        try
        {
            var parameters = ((ISingleFeaturePredictionTransformer<SequenceClassifierBinaryModelParameters>)((IEnumerable<ITransformer>)model).Last()).Model;
            var e = Assert.ThrowsExactly<InvalidOperationException>(() => parameters.ExportToOnnx(new MemoryStream()));
            StringAssert.Contains(e.Message, "UnknownTokens = Skip");
            StringAssert.Contains(e.Message, "MapToUnknown");
        }
        finally
        {
            QuantizedSequenceTrainerTests.DisposeModel(model);
        }
    }

    [TestMethod]
    public void An_exported_classifier_scores_through_ApplyOnnxModel_as_the_engine()
    {
        var train = SequenceClassifierTestData.ContainsToken(200, seed: 1);
        var test = SequenceClassifierTestData.ContainsToken(16, seed: 2);
        var options = SequenceClassifierTestData.Model(QuantizerKind.TernaryWeightNet, RecurrentNormalization.Weight, RecurrentCellKind.Gru);
        options.QuantizeEmbeddingAndHead = true;
        using var model = QuantizedSequenceClassifier.Train(train.Sequences, train.Labels, null, null, options, SequenceClassifierTestData.Training(1));
        var packed = model.Pack();
        string file = Path.Combine(Path.GetTempPath(), $"onnx-mlnet-{Guid.NewGuid():N}.onnx");
        try
        {
            packed.ExportToOnnx(file, new OnnxExportOptions { WeightFormat = OnnxWeightFormat.QuantizeDequantize });
            var ml = new MLContext(seed: 1);
            var rows = test.Sequences.Select(s =>
            {
                var tokens = new long[Time];
                for (int t = 0; t < s.Length; t++) tokens[t] = s[t];
                return new Row { tokens = tokens, lengths = [s.Length] };
            }).ToList();
            var data = ml.Data.LoadFromEnumerable(rows);
            var pipeline = ml.Transforms.ApplyOnnxModel(["probabilities"], ["tokens", "lengths"], file,
                new Dictionary<string, int[]> { ["tokens"] = [1, Time], ["lengths"] = [1] }, gpuDeviceId: null, fallbackToCpu: false);
            using var transformer = pipeline.Fit(data);
            var scored = ml.Data.CreateEnumerable<Scored>(transformer.Transform(data), reuseRowObject: false).ToList();
            Assert.AreEqual(test.Sequences.Length, scored.Count);
            for (int i = 0; i < scored.Count; i++)
            {
                var expected = packed.Predict(test.Sequences[i]).Probabilities;
                Assert.AreEqual(expected.Length, scored[i].probabilities.Length);
                for (int c = 0; c < expected.Length; c++)
                    Assert.AreEqual(expected[c], scored[i].probabilities[c], 1e-4 * Math.Max(expected[c], 1e-3), $"row {i} class {c}");
            }
        }
        finally
        {
            File.Delete(file);
        }
    }
}
