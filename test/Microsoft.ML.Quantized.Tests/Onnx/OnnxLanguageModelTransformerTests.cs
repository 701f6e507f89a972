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

    /// <summary>
    /// Text in, the transformer's columns out through <c>mlContext.Model.ConvertToOnnx</c> (ML.NET's tokenizer and key
    /// mapping, then the model): ONNX Runtime, one row per run, gives its <c>Features</c> and <c>FeaturesPerplexity</c>
    /// within 1e-4 relative, unseen words included, and for an empty text a NaN perplexity and the state after
    /// <c>&lt;eos&gt;</c>. A layer-normalized model is refused with the reason.
    /// </summary>
    [TestMethod]
    public void A_text_pipeline_with_the_language_model_converts_to_onnx_and_gives_its_columns()
    {
        var ml = new MLContext(seed: 3);
        var train = ml.Data.LoadFromEnumerable(TinyText.Rows(80));
        var model = QuantizedLanguageModelTransformerTests.Pipeline(ml, TinyText.Options(epochs: 3)).Fit(train);
        var transformer = QuantizedLanguageModelTransformerTests.TransformerOf(model);
        try
        {
            var rows = TinyText.Rows(6, seed: 5).ToList();
            rows.Add(new() { Text = "the zebra sat on a sofa" });
            rows.Add(new() { Text = "" });
            var scored = model.Transform(ml.Data.LoadFromEnumerable(rows));
            var features = scored.GetColumn<float[]>("Features").ToArray();
            var perplexity = scored.GetColumn<float>("FeaturesPerplexity").ToArray();
            using var onnx = new MemoryStream();
            ml.Model.ConvertToOnnx(model, train, onnx);
            using var session = new InferenceSession(onnx.ToArray());
            for (int r = 0; r < rows.Count; r++)
            {
                using var results = session.Run(
                [
                    NamedOnnxValue.CreateFromTensor("Text", new DenseTensor<string>(new[] { rows[r].Text }, [1, 1])),
                    NamedOnnxValue.CreateFromTensor("Label", new DenseTensor<bool>(new[] { rows[r].Label }, [1, 1])),
                ]);
                var actualFeatures = results.Single(v => v.Name == "Features.output").AsTensor<float>().ToArray();
                float actualPerplexity = results.Single(v => v.Name == "FeaturesPerplexity.output").AsTensor<float>().Single();
                if (float.IsNaN(perplexity[r])) Assert.IsTrue(float.IsNaN(actualPerplexity), $"row {r}: perplexity of no tokens");
                else Assert.AreEqual(perplexity[r], actualPerplexity, 1e-4 * perplexity[r], $"row {r}: perplexity");
                Assert.HasCount(features[r].Length, actualFeatures);
                for (int i = 0; i < features[r].Length; i++)
                    Assert.AreEqual(features[r][i], actualFeatures[i], 1e-4 * Math.Max(Math.Abs(features[r][i]), 1e-2), $"row {r}, feature {i}");
            }
        }
        finally
        {
            transformer.Dispose();
        }

        var layerNorm = TinyText.Options(epochs: 1);
        layerNorm.Model.Recurrent.Normalization = RecurrentNormalization.Layer;
        var refused = QuantizedLanguageModelTransformerTests.Pipeline(ml, layerNorm, gru: true).Fit(train);
        try
        {
            var e = Assert.ThrowsExactly<InvalidOperationException>(() => ml.Model.ConvertToOnnx(refused, train, new MemoryStream()));
            StringAssert.Contains(e.Message, "language model: layer 0 has layer normalization");
            StringAssert.Contains(e.Message, "the transformer's ExportToOnnx");
        }
        finally
        {
            QuantizedLanguageModelTransformerTests.TransformerOf(refused).Dispose();
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
