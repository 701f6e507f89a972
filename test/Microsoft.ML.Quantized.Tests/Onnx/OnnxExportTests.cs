namespace Microsoft.ML.Quantized.Tests;

/// <summary>
/// Packed models exported to ONNX and run in ONNX Runtime give the managed engine's outputs (within 1e-4 relative), in
/// both weight formats: cells that are exactly ONNX's LSTM/GRU as those operators, the others (layer and batch
/// normalization, slopes, activation quantizers) as a Scan over the engine's cell.
/// </summary>
[TestClass]
public sealed class OnnxExportTests
{
    private static readonly (int[][] Sequences, int[] Labels) TokenTrain = SequenceClassifierTestData.ContainsToken(200, seed: 1);
    private static readonly (int[][] Sequences, int[] Labels) TokenTest = SequenceClassifierTestData.ContainsToken(24, seed: 2);
    private static readonly (float[][] Sequences, int[] Labels) FrameTrain = SequenceClassifierTestData.SignOfSum(200, seed: 3);
    private static readonly (float[][] Sequences, int[] Labels) FrameTest = SequenceClassifierTestData.SignOfSum(24, seed: 4);
    private static readonly string Text = TinyCorpus.Text(160);

    [TestMethod]
    [DataRow(RecurrentCellKind.Lstm, QuantizerKind.None, RecurrentNormalization.None, 1)]
    [DataRow(RecurrentCellKind.Gru, QuantizerKind.None, RecurrentNormalization.None, 2)]
    [DataRow(RecurrentCellKind.Lstm, QuantizerKind.TernaryWeightNet, RecurrentNormalization.Weight, 2)]
    [DataRow(RecurrentCellKind.Gru, QuantizerKind.TernaryWeightNet, RecurrentNormalization.Weight, 1)]
    [DataRow(RecurrentCellKind.Lstm, QuantizerKind.BinaryWeightNet, RecurrentNormalization.None, 1)]
    [DataRow(RecurrentCellKind.Gru, QuantizerKind.BinaryWeightNet, RecurrentNormalization.Weight, 2)]
    public void An_exported_token_classifier_gives_the_engines_probabilities(RecurrentCellKind cell, QuantizerKind kind, RecurrentNormalization normalization, int layers)
    {
        var options = SequenceClassifierTestData.Model(kind, normalization, cell);
        options.Recurrent.Layers = layers;
        options.QuantizeEmbeddingAndHead = kind != QuantizerKind.None;
        var (_, sizes) = TokenExportsGiveTheEngines(options);
        if (kind == QuantizerKind.None)
            Assert.AreEqual(sizes[OnnxWeightFormat.Float], sizes[OnnxWeightFormat.QuantizeDequantize], 32, "float weights have no codes: the QDQ form stores them as float (only the doc string differs)");
        else
            // A hidden-24 model is mostly short rows, where a row's scale and zero point weigh; docs/onnx-export.md measures a realistic one.
            Assert.IsTrue(sizes[OnnxWeightFormat.QuantizeDequantize] < 0.6 * sizes[OnnxWeightFormat.Float],
                $"QDQ {sizes[OnnxWeightFormat.QuantizeDequantize]} B vs float {sizes[OnnxWeightFormat.Float]} B");
    }

    [TestMethod]
    public void An_exported_frame_classifier_gives_the_engines_probabilities()
    {
        var options = SequenceClassifierTestData.Model(QuantizerKind.TernaryWeightNet, RecurrentNormalization.Weight, RecurrentCellKind.Lstm);
        using var model = QuantizedSequenceClassifier.Train(FrameTrain.Sequences, FrameTrain.Labels, null, null, options, SequenceClassifierTestData.Training(1));
        var packed = model.Pack();
        Assert.AreEqual(SequenceClassifierInputKind.Frames, packed.InputKind);
        var expected = FrameTest.Sequences.Select(s => packed.Predict(s).Probabilities).ToArray();
        foreach (var format in new[] { OnnxWeightFormat.Float, OnnxWeightFormat.QuantizeDequantize })
            AssertClose(expected, OnnxRuntimeScoring.ClassifyFrames(OnnxRuntimeScoring.Export(packed, format), FrameTest.Sequences, options.FrameSize), $"{format}");
    }

    [TestMethod]
    [DataRow(RecurrentCellKind.Lstm, QuantizerKind.TernaryWeightNet, RecurrentNormalization.Weight, 2)]
    [DataRow(RecurrentCellKind.Gru, QuantizerKind.BinaryWeightNet, RecurrentNormalization.None, 1)]
    [DataRow(RecurrentCellKind.Lstm, QuantizerKind.None, RecurrentNormalization.None, 1)]
    public void An_exported_language_model_gives_the_engines_logits_at_every_step(RecurrentCellKind cell, QuantizerKind kind, RecurrentNormalization normalization, int layers)
    {
        var options = TinyCorpus.Model(kind, normalization, cell);
        options.Recurrent.Layers = layers;
        options.QuantizeEmbeddingAndDecoder = kind != QuantizerKind.None;
        var chars = Vocabulary.FromCharacters(Text);
        using var model = QuantizedLanguageModel.Train(chars, Text, null, options, TinyCorpus.Training(1));
        var packed = model.Pack();
        var rows = new[] { chars.Encode("the cat sat"), chars.Encode("a dog ran. ") };
        var scorer = new LanguageModelScorer(packed.Network);
        int vocabulary = packed.Network.VocabularySize;
        var expected = new float[rows.Length, rows[0].Length, vocabulary];
        var step = new float[vocabulary];
        for (int b = 0; b < rows.Length; b++)
        {
            scorer.Reset();
            for (int t = 0; t < rows[b].Length; t++)
            {
                scorer.Step(rows[b][t], step);
                for (int v = 0; v < vocabulary; v++) expected[b, t, v] = step[v];
            }
        }
        foreach (var format in new[] { OnnxWeightFormat.Float, OnnxWeightFormat.QuantizeDequantize })
        {
            var (name, logits) = OnnxRuntimeScoring.LanguageModel(OnnxRuntimeScoring.Export(packed, format), rows);
            Assert.AreEqual("logits", name);
            for (int b = 0; b < rows.Length; b++)
                for (int t = 0; t < rows[b].Length; t++)
                    for (int v = 0; v < vocabulary; v++)
                        Assert.AreEqual(expected[b, t, v], logits[b, t, v], 1e-4 * Math.Max(Math.Abs(expected[b, t, v]), 1e-2), $"{format} row {b} step {t} id {v}");
        }
        var (logName, logProbabilities) = OnnxRuntimeScoring.LanguageModel(OnnxRuntimeScoring.Export(packed, OnnxWeightFormat.QuantizeDequantize, logProbabilities: true), rows);
        Assert.AreEqual("log_probabilities", logName);
        for (int t = 0; t < rows[0].Length; t++)
        {
            double logSumExp = Math.Log(Enumerable.Range(0, vocabulary).Sum(v => Math.Exp(expected[0, t, v])));
            for (int v = 0; v < vocabulary; v++)
                Assert.AreEqual(expected[0, t, v] - logSumExp, logProbabilities[0, t, v], 1e-4 * Math.Max(Math.Abs(expected[0, t, v] - logSumExp), 1e-2));
        }
    }

    [TestMethod]
    [DataRow(RecurrentCellKind.Lstm, RecurrentNormalization.Layer, QuantizerKind.None, 2, LayerNormForm.PerGate)]
    [DataRow(RecurrentCellKind.Gru, RecurrentNormalization.Layer, QuantizerKind.None, 1, LayerNormForm.PerGate)]
    [DataRow(RecurrentCellKind.Lstm, RecurrentNormalization.Layer, QuantizerKind.None, 1, LayerNormForm.Joint)]
    [DataRow(RecurrentCellKind.Gru, RecurrentNormalization.Layer, QuantizerKind.Uniform, 2, LayerNormForm.Joint)]
    [DataRow(RecurrentCellKind.Lstm, RecurrentNormalization.BatchPerStep, QuantizerKind.None, 1, LayerNormForm.PerGate)]
    [DataRow(RecurrentCellKind.Gru, RecurrentNormalization.BatchShared, QuantizerKind.None, 2, LayerNormForm.PerGate)]
    [DataRow(RecurrentCellKind.Lstm, RecurrentNormalization.Weight, QuantizerKind.BernoulliTernary, 1, LayerNormForm.PerGate)]
    [DataRow(RecurrentCellKind.Gru, RecurrentNormalization.None, QuantizerKind.Uniform, 1, LayerNormForm.PerGate)]
    public void A_cell_beyond_the_onnx_operators_exports_as_a_scan_with_the_engines_probabilities(
        RecurrentCellKind cell, RecurrentNormalization normalization, QuantizerKind activations, int layers, LayerNormForm form)
    {
        var options = SequenceClassifierTestData.Model(QuantizerKind.TernaryWeightNet, normalization, cell);
        options.Recurrent.Layers = layers;
        options.Recurrent.LayerNormForm = form;
        options.Recurrent.ActivationQuantizer = new QuantizerOptions { Kind = activations };
        options.Recurrent.Slopes = new ActivationSlopes { ForgetGate = 1.5, Candidate = 0.75 };
        options.QuantizeEmbeddingAndHead = true;
        TokenExportsGiveTheEngines(options);
    }

    /// <summary>
    /// The uniform activation quantizer's other step rules, through a Scan: a computed step (max |x| / Qp, times a
    /// multiplier) rounded up to a power of two, and a learned (fixed) step.
    /// </summary>
    [TestMethod]
    [DataRow(RecurrentCellKind.Gru, true, false)]
    [DataRow(RecurrentCellKind.Lstm, false, true)]
    public void Uniform_activation_quantizers_with_a_power_of_two_or_a_learned_step_export_with_the_engines_probabilities(RecurrentCellKind cell, bool powerOfTwo, bool learned)
    {
        var options = SequenceClassifierTestData.Model(QuantizerKind.TernaryWeightNet, RecurrentNormalization.Weight, cell);
        options.Recurrent.ActivationQuantizer = new QuantizerOptions
        {
            Kind = QuantizerKind.Uniform, Bits = 4, PowerOfTwoScale = powerOfTwo, LearnedScale = learned, StepSizeMultiplier = powerOfTwo ? 1.5 : 1.0,
        };
        var (packed, _) = TokenExportsGiveTheEngines(options);
        var quantizers = packed.Network.Recurrent.Layers[0].Activations.Where(a => !a.IsIdentity).ToList();
        Assert.IsNotEmpty(quantizers);
        Assert.IsTrue(quantizers.All(q => q.PowerOfTwoStep == powerOfTwo && (q.FixedStep > 0) == learned), "the packed quantizers take the branch under test");
    }

    /// <summary>
    /// A quantized LSTM cell state (and gates, float hidden state) exports through the Scan with the engine's probabilities.
    /// The computed step has a multiplier off round ratios: with 3-bit gates, c = f c + i g holds products of a few levels, and
    /// max |c| / 3 as the step puts many of them exactly on a rounding tie, which the engine and ONNX Runtime (different
    /// summation orders in their products) may break either way.
    /// </summary>
    [TestMethod]
    [DataRow(false)]
    [DataRow(true)]
    public void A_quantized_cell_state_exports_with_the_engines_probabilities(bool learned)
    {
        var options = SequenceClassifierTestData.Model(QuantizerKind.TernaryWeightNet, RecurrentNormalization.Layer, RecurrentCellKind.Lstm);
        options.Recurrent.ActivationQuantizer = new QuantizerOptions { Kind = QuantizerKind.Uniform, Bits = 3, LearnedScale = learned, StepSizeMultiplier = learned ? 1.0 : 0.93 };
        options.Recurrent.QuantizedActivations = RecurrentActivations.Gates | RecurrentActivations.CellState;
        var (packed, _) = TokenExportsGiveTheEngines(options);
        var activations = packed.Network.Recurrent.Layers[0].Activations;
        CollectionAssert.AreEqual(new[] { false, false, false, false, true, false }, activations.Select(a => a.IsIdentity).ToArray(), "gates and cell state quantized, hidden float");
    }

    /// <summary>
    /// Alternating multi-bit weights (a sum of scaled sign planes per row) have no single scale per row, so the QDQ file
    /// keeps them float: the same probabilities, and a file of the float file's size.
    /// </summary>
    [TestMethod]
    public void Alternating_multi_bit_weights_stay_float_in_a_qdq_file()
    {
        var options = SequenceClassifierTestData.Model(QuantizerKind.AlternatingMultiBit, RecurrentNormalization.None, RecurrentCellKind.Lstm);
        options.Recurrent.WeightQuantizer.Bits = 2;
        var (packed, sizes) = TokenExportsGiveTheEngines(options);
        var layer = packed.Network.Recurrent.Layers[0];
        Assert.AreEqual(CodeLayout.BinaryBases, layer.Input.Weight.Layout);
        Assert.AreEqual(2, layer.Input.Weight.Bits);
        Assert.AreEqual(sizes[OnnxWeightFormat.Float], sizes[OnnxWeightFormat.QuantizeDequantize], 32, "no matrix has int8 codes (only the doc string differs)");
    }

    /// <summary>Mean and max pooling over rows of different lengths in one padded batch, through ONNX LSTM/GRU nodes and through Scan.</summary>
    [TestMethod]
    [DataRow(RecurrentCellKind.Lstm, RecurrentNormalization.Weight, SequencePooling.Mean)]
    [DataRow(RecurrentCellKind.Gru, RecurrentNormalization.None, SequencePooling.Max)]
    [DataRow(RecurrentCellKind.Lstm, RecurrentNormalization.Layer, SequencePooling.Max)]
    [DataRow(RecurrentCellKind.Gru, RecurrentNormalization.BatchShared, SequencePooling.Mean)]
    public void A_pooled_classifier_exports_with_its_pooling(RecurrentCellKind cell, RecurrentNormalization normalization, SequencePooling pooling)
    {
        Assert.IsGreaterThan(1, TokenTest.Sequences.Select(s => s.Length).Distinct().Count(), "rows of different lengths, so padding must be left out");
        var options = SequenceClassifierTestData.Model(QuantizerKind.TernaryWeightNet, normalization, cell);
        options.Pooling = pooling;
        options.QuantizeEmbeddingAndHead = true;
        TokenExportsGiveTheEngines(options);
    }

    [TestMethod]
    [DataRow(LayerNormForm.PerGate)]
    [DataRow(LayerNormForm.Joint)]
    public void A_layer_normalized_language_model_exports_as_a_scan_with_the_engines_logits(LayerNormForm form)
    {
        var options = TinyCorpus.Model(QuantizerKind.TernaryWeightNet, RecurrentNormalization.Layer, RecurrentCellKind.Lstm);
        options.Recurrent.LayerNormForm = form;
        options.QuantizeEmbeddingAndDecoder = true;
        var chars = Vocabulary.FromCharacters(Text);
        using var model = QuantizedLanguageModel.Train(chars, Text, null, options, TinyCorpus.Training(1));
        var packed = model.Pack();
        var rows = new[] { chars.Encode("the cat sat"), chars.Encode("a dog ran. ") };
        var scorer = new LanguageModelScorer(packed.Network);
        var step = new float[packed.Network.VocabularySize];
        foreach (var format in new[] { OnnxWeightFormat.Float, OnnxWeightFormat.QuantizeDequantize })
        {
            var (_, logits) = OnnxRuntimeScoring.LanguageModel(OnnxRuntimeScoring.Export(packed, format), rows);
            for (int b = 0; b < rows.Length; b++)
            {
                scorer.Reset();
                for (int t = 0; t < rows[b].Length; t++)
                {
                    scorer.Step(rows[b][t], step);
                    for (int v = 0; v < step.Length; v++)
                        Assert.AreEqual(step[v], logits[b, t, v], 1e-4 * Math.Max(Math.Abs(step[v]), 1e-2), $"{format} row {b} step {t} id {v}");
                }
            }
        }
    }

    [TestMethod]
    public void An_exported_language_models_cross_entropy_equals_the_engines_to_four_significant_digits()
    {
        var options = TinyCorpus.Model(QuantizerKind.TernaryWeightNet, RecurrentNormalization.Weight, RecurrentCellKind.Gru);
        options.QuantizeEmbeddingAndDecoder = true;
        var chars = Vocabulary.FromCharacters(Text);
        using var model = QuantizedLanguageModel.Train(chars, Text, null, options, TinyCorpus.Training(1));
        var packed = model.Pack();
        var ids = chars.Encode(TinyCorpus.Text(6, seed: 11));
        var (expectedSum, count) = new LanguageModelScorer(packed.Network).Score(ids, new float[packed.Network.Recurrent.HiddenSize]);
        var (_, logProbabilities) = OnnxRuntimeScoring.LanguageModel(
            OnnxRuntimeScoring.Export(packed, OnnxWeightFormat.QuantizeDequantize, logProbabilities: true), [ids]);
        double sum = 0;
        for (int t = 0; t + 1 < ids.Length; t++) sum -= logProbabilities[0, t, ids[t + 1]];
        Assert.AreEqual(ids.Length - 1, count);
        Assert.AreEqual(expectedSum / count, sum / count, 1e-4 * expectedSum / count, "cross-entropy per token");
    }

    /// <summary>
    /// Trains a token classifier of <paramref name="options"/> for one epoch and checks that ONNX Runtime on its float and
    /// QDQ exports gives the engine's probabilities on <see cref="TokenTest"/> (padded batch with lengths); returns the
    /// packed classifier and the two files' sizes.
    /// </summary>
    private static (PackedSequenceClassifier Packed, Dictionary<OnnxWeightFormat, int> Sizes) TokenExportsGiveTheEngines(SequenceClassifierOptions options)
    {
        using var model = QuantizedSequenceClassifier.Train(TokenTrain.Sequences, TokenTrain.Labels, null, null, options, SequenceClassifierTestData.Training(1));
        var packed = model.Pack();
        var expected = TokenTest.Sequences.Select(s => packed.Predict(s).Probabilities).ToArray();
        var sizes = new Dictionary<OnnxWeightFormat, int>();
        foreach (var format in new[] { OnnxWeightFormat.Float, OnnxWeightFormat.QuantizeDequantize })
        {
            var onnx = OnnxRuntimeScoring.Export(packed, format);
            sizes[format] = onnx.Length;
            AssertClose(expected, OnnxRuntimeScoring.ClassifyTokens(onnx, TokenTest.Sequences), $"{options.Recurrent.Cell} {options.Recurrent.Normalization} {options.Pooling} {format}");
        }
        return (packed, sizes);
    }

    private static void AssertClose(float[][] expected, float[][] actual, string what)
    {
        Assert.AreEqual(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            for (int c = 0; c < expected[i].Length; c++)
                Assert.AreEqual(expected[i][c], actual[i][c], 1e-4 * Math.Max(expected[i][c], 1e-3), $"{what}: sequence {i} class {c}");
    }
}
