using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Microsoft.ML.Quantized.Tests.MLNet;

namespace Microsoft.ML.Quantized.Tests;

/// <summary>The fitted language-model transformer's ONNX export gives the transformer's own columns.</summary>
[TestClass]
public sealed class OnnxLanguageModelTransformerTests
{
    /// <summary>
    /// ONNX Runtime on the key column (padded, with lengths; unseen words and an empty row included) gives the transformer's
    /// <c>Features</c> and <c>FeaturesPerplexity</c> within 1e-4 relative, in float and QDQ form, through ONNX LSTM/GRU
    /// nodes (a ternary LSTM) and through a Scan (a layer-normalized GRU).
    /// </summary>
    [TestMethod]
    [DataRow(false, RecurrentNormalization.Weight)]
    [DataRow(true, RecurrentNormalization.Layer)]
    public void An_exported_language_model_transformer_gives_its_features_and_perplexity(bool gru, RecurrentNormalization normalization)
    {
        var ml = new MLContext(seed: 3);
        var options = TinyText.Options(epochs: 3);
        options.Model.Recurrent.Normalization = normalization;
        var model = QuantizedLanguageModelTransformerTests.Pipeline(ml, options, gru).Fit(ml.Data.LoadFromEnumerable(TinyText.Rows(80)));
        var transformer = QuantizedLanguageModelTransformerTests.TransformerOf(model);
        try
        {
            var rows = TinyText.Rows(6, seed: 5).Concat(TinyText.ShuffledRows(2, seed: 5)).ToList();
            rows.Add(new() { Text = "the zebra sat on a sofa" });
            rows.Add(new() { Text = "" });
            var data = ml.Data.LoadFromEnumerable(rows);
            var scored = model.Transform(data);
            var features = scored.GetColumn<float[]>("Features").ToArray();
            var perplexity = scored.GetColumn<float>("FeaturesPerplexity").ToArray();
            var keys = scored.GetColumn<uint[]>("Tokens").ToArray();
            Assert.IsTrue(keys[^2].Contains(0u) && keys[^1].Length == 0 && float.IsNaN(perplexity[^1]), "an unseen word (key 0) and an empty row");
            foreach (var format in new[] { OnnxWeightFormat.Float, OnnxWeightFormat.QuantizeDequantize })
            {
                using var onnx = new MemoryStream();
                transformer.ExportToOnnx(onnx, new OnnxExportOptions { WeightFormat = format });
                var (actualFeatures, actualPerplexity) = Run(onnx.ToArray(), keys);
                for (int r = 0; r < rows.Count; r++)
                {
                    if (float.IsNaN(perplexity[r])) Assert.IsTrue(float.IsNaN(actualPerplexity[r]), $"{format}, row {r}: perplexity of no tokens");
                    else Assert.AreEqual(perplexity[r], actualPerplexity[r], 1e-4 * perplexity[r], $"{format}, row {r}: perplexity");
                    for (int i = 0; i < features[r].Length; i++)
                        Assert.AreEqual(features[r][i], actualFeatures[r][i], 1e-4 * Math.Max(Math.Abs(features[r][i]), 1e-2), $"{format}, row {r}, feature {i}");
                }
            }
        }
        finally
        {
            transformer.Dispose();
        }
    }

    [TestMethod]
    public void A_language_model_that_skips_unknown_words_is_not_exported()
    {
        var ml = new MLContext(seed: 3);
        var options = TinyText.Options(epochs: 1);
        options.UnknownTokens = UnknownTokenHandling.Skip;
        var transformer = QuantizedLanguageModelTransformerTests.TransformerOf(
            QuantizedLanguageModelTransformerTests.Pipeline(ml, options).Fit(ml.Data.LoadFromEnumerable(TinyText.Rows(20))));
        try
        {
            var e = Assert.ThrowsExactly<InvalidOperationException>(() => transformer.ExportToOnnx(new MemoryStream()));
            StringAssert.Contains(e.Message, "UnknownTokens = Skip");
            StringAssert.Contains(e.Message, "MapToUnknown");
        }
        finally
        {
            transformer.Dispose();
        }
    }

    private static (float[][] Features, float[] Perplexity) Run(byte[] onnx, uint[][] keys)
    {
        int time = keys.Max(k => k.Length);
        var padded = new DenseTensor<long>([keys.Length, time]);
        for (int b = 0; b < keys.Length; b++)
            for (int t = 0; t < keys[b].Length; t++) padded[b, t] = keys[b][t];
        var lengths = new DenseTensor<long>(keys.Select(k => (long)k.Length).ToArray(), [keys.Length]);
        using var session = new InferenceSession(onnx);
        using var results = session.Run([NamedOnnxValue.CreateFromTensor("keys", padded), NamedOnnxValue.CreateFromTensor("lengths", lengths)]);
        var features = results.Single(r => r.Name == "Features").AsTensor<float>();
        var perplexity = results.Single(r => r.Name == "FeaturesPerplexity").AsTensor<float>();
        return (Enumerable.Range(0, keys.Length).Select(b => Enumerable.Range(0, features.Dimensions[1]).Select(i => features[b, i]).ToArray()).ToArray(),
            Enumerable.Range(0, keys.Length).Select(b => perplexity[b]).ToArray());
    }
}
