using Microsoft.ML.Data;

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
