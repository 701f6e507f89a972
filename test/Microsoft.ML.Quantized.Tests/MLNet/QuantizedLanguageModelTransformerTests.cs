using Microsoft.ML;
using Microsoft.ML.Data;

namespace Microsoft.ML.Quantized.Tests.MLNet;

[TestClass]
public sealed class QuantizedLanguageModelTransformerTests
{
    private static MLContext _ml = null!;
    private static IDataView _train = null!;
    private static ITransformer _model = null!;

    public sealed class TextRow
    {
        public string Text { get; set; } = "";
        public bool Label { get; set; }
    }

    public sealed class Prediction
    {
        public float[] Features { get; set; } = [];
        public float FeaturesPerplexity { get; set; }
    }

    [ClassInitialize]
    public static void Fit(TestContext _)
    {
        _ml = new MLContext(seed: 3);
        _train = _ml.Data.LoadFromEnumerable(TinyText.Rows(80));
        _model = Pipeline(_ml, TinyText.Options()).Fit(_train);
    }

    [ClassCleanup]
    public static void Cleanup() => (TransformerOf(_model) as IDisposable)?.Dispose();

    internal static IEstimator<ITransformer> Pipeline(MLContext ml, QuantizedRecurrentLanguageModelOptions options, bool gru = false) =>
        ml.Transforms.Text.TokenizeIntoWords("Tokens", nameof(TextRow.Text))
            .Append(ml.Transforms.Conversion.MapValueToKey("Tokens"))
            .Append(gru ? ml.Transforms.QuantizedGru("Features", "Tokens", options) : ml.Transforms.QuantizedLstm("Features", "Tokens", options));

    internal static QuantizedRecurrentLanguageModelTransformer TransformerOf(ITransformer model) =>
        model as QuantizedRecurrentLanguageModelTransformer ?? ((IEnumerable<ITransformer>)model).Select(TransformerOfOrNull).Last(t => t is not null)!;

    private static QuantizedRecurrentLanguageModelTransformer? TransformerOfOrNull(ITransformer t) =>
        t as QuantizedRecurrentLanguageModelTransformer ?? (t is IEnumerable<ITransformer> chain ? chain.Select(TransformerOfOrNull).LastOrDefault(x => x is not null) : null);

    private static (float[][] Features, float[] Perplexity) Outputs(ITransformer model, IDataView data)
    {
        var output = model.Transform(data);
        var features = output.GetColumn<float[]>("Features").ToArray();
        var perplexity = output.GetColumn<float>("FeaturesPerplexity").ToArray();
        return (features, perplexity);
    }

    [TestMethod]
    public void Transform_adds_a_finite_feature_vector_of_the_hidden_size_and_a_perplexity()
    {
        var output = _model.Transform(_train);
        var features = output.Schema["Features"];
        Assert.IsTrue(features.Type is VectorDataViewType { Size: TinyText.Hidden } v && v.ItemType == NumberDataViewType.Single, features.Type.ToString());
        Assert.AreEqual(NumberDataViewType.Single, output.Schema["FeaturesPerplexity"].Type);
        var (rows, perplexity) = Outputs(_model, _train);
        Assert.HasCount(80, rows);
        foreach (var row in rows)
        {
            Assert.HasCount(TinyText.Hidden, row);
            Assert.IsTrue(row.All(float.IsFinite));
        }
        Assert.IsTrue(rows.Any(r => r.Any(x => x != 0)), "features are all zero");
        Assert.IsTrue(perplexity.All(p => float.IsFinite(p) && p >= 1), string.Join(", ", perplexity.Take(5)));
        // Rows of the same sentence get the same features; different sentences different ones.
        var texts = _train.GetColumn<string>("Text").ToArray();
        int a = Array.IndexOf(texts, texts[0], 1), b = Array.FindIndex(texts, t => t != texts[0]);
        CollectionAssert.AreEqual(rows[0], rows[a]);
        CollectionAssert.AreNotEqual(rows[0], rows[b]);
    }

    [TestMethod]
    public void Perplexity_is_lower_on_in_domain_rows_than_on_shuffled_token_rows()
    {
        var inDomain = _ml.Data.LoadFromEnumerable(TinyText.Rows(40, seed: 11));
        var shuffled = _ml.Data.LoadFromEnumerable(TinyText.ShuffledRows(40, seed: 11));
        var (_, good) = Outputs(_model, inDomain);
        var (_, bad) = Outputs(_model, shuffled);
        double meanGood = good.Average(p => Math.Log(p)), meanBad = bad.Average(p => Math.Log(p));
        Assert.IsLessThan(meanBad - 0.5, meanGood, $"mean log perplexity in-domain {meanGood:F3}, shuffled {meanBad:F3}");
        var transformer = TransformerOf(_model);
        var tokens = new TransformerChain<ITransformer>(((TransformerChain<QuantizedRecurrentLanguageModelTransformer>)_model).Take(2).ToArray());
        var evalGood = transformer.Evaluate(tokens.Transform(inDomain));
        var evalBad = transformer.Evaluate(tokens.Transform(shuffled));
        Assert.IsLessThan(evalBad.Perplexity, evalGood.Perplexity);
        Assert.AreEqual(evalGood.CrossEntropy / Math.Log(2), evalGood.BitsPerToken, 1e-12);
    }

    [TestMethod]
    public void Full_pipeline_with_an_ml_net_trainer_fits_and_predicts()
    {
        var ml = new MLContext(seed: 3);
        var pipeline = Pipeline(ml, TinyText.Options())
            .Append(ml.Transforms.Concatenate("AllFeatures", "Features", "FeaturesPerplexity"))
            .AppendCacheCheckpoint(ml) // the trainer makes many passes: run the language model once per row
            .Append(ml.BinaryClassification.Trainers.LbfgsLogisticRegression("Label", "AllFeatures"));
        var model = pipeline.Fit(_train);
        var metrics = ml.BinaryClassification.Evaluate(model.Transform(_train));
        Assert.IsGreaterThan(0.8, metrics.Accuracy, $"accuracy {metrics.Accuracy}");
        var engine = ml.Model.CreatePredictionEngine<TextRow, AnimalPrediction>(model);
        Assert.IsTrue(engine.Predict(new TextRow { Text = "the cat sat on the mat" }).PredictedLabel);
        Assert.IsFalse(engine.Predict(new TextRow { Text = "we ate the red apple" }).PredictedLabel);
    }

    public sealed class AnimalPrediction
    {
        public bool PredictedLabel { get; set; }
    }

    [TestMethod]
    public void Saved_and_loaded_in_a_fresh_MLContext_gives_identical_outputs()
    {
        var path = Path.Combine(Path.GetTempPath(), $"qlm-{Guid.NewGuid():N}.zip");
        try
        {
            _ml.Model.Save(_model, _train.Schema, path);
            var fresh = new MLContext();
            var loaded = fresh.Model.Load(path, out var schema);
            Assert.AreEqual(_train.Schema.Count, schema.Count);
            var data = fresh.Data.LoadFromEnumerable(TinyText.Rows(30, seed: 5).Concat(TinyText.ShuffledRows(10, seed: 5)));
            var (f1, p1) = Outputs(_model, data);
            var (f2, p2) = Outputs(loaded, data);
            for (int i = 0; i < f1.Length; i++) CollectionAssert.AreEqual(f1[i], f2[i]);
            CollectionAssert.AreEqual(p1, p2);
            var original = TransformerOf(_model);
            var copy = TransformerOf(loaded);
            Assert.AreEqual(original.History.Count, copy.History.Count);
            CollectionAssert.AreEqual(original.KnownKeys.ToArray(), copy.KnownKeys.ToArray());
            Assert.AreEqual(original.Generate("the cat", 6, temperature: 0), copy.Generate("the cat", 6, temperature: 0));
            copy.Dispose();
        }
        finally
        {
            File.Delete(path);
        }
    }

    [TestMethod]
    public void The_saved_model_holds_the_packed_weights_and_no_float_training_weights_unless_asked()
    {
        using var stream = new MemoryStream();
        _ml.Model.Save(_model, _train.Schema, stream);
        var bytes = stream.ToArray();
        var names = ModelZip.EntryNames(bytes);
        Assert.IsFalse(names.Any(n => n.EndsWith("QuantizedLanguageModel.bin", StringComparison.Ordinal)), string.Join(", ", names));
        var lm = TransformerOf(_model);
        // The packed stream is the size report's packed bytes plus the stream's own framing (magic, sizes, settings, checksums).
        long packed = ModelZip.EntryLength(bytes, "PackedLanguageModel.bin");
        Assert.IsTrue(packed >= lm.SizeReport().PackedBytes && packed < lm.SizeReport().PackedBytes + 1024, $"{packed} vs {lm.SizeReport().PackedBytes}");

        var loadedChain = new MLContext().Model.Load(new MemoryStream(bytes), out _);
        var loaded = TransformerOf(loadedChain);
        Assert.IsFalse(loaded.HasTrainingWeights);
        Assert.IsTrue(lm.HasTrainingWeights, "the transformer Fit returns keeps them in memory");
        Assert.AreEqual(lm.SizeReport(), loaded.SizeReport());
        CollectionAssert.AreEqual(lm.History.Select(h => h.TrainingLoss).ToArray(), loaded.History.Select(h => h.TrainingLoss).ToArray());
        var data = Texts("the cat sat on the mat", "a dog ran to the park", "the zebra sat");
        var (expected, expectedPerplexity) = Outputs(_model, data);
        var (actual, actualPerplexity) = Outputs(loadedChain, data);
        for (int i = 0; i < expected.Length; i++) CollectionAssert.AreEqual(expected[i], actual[i]);
        CollectionAssert.AreEqual(expectedPerplexity, actualPerplexity);
        Assert.AreEqual(lm.Generate("the cat", 6, temperature: 0.8, seed: 2), loaded.Generate("the cat", 6, temperature: 0.8, seed: 2));
        var e = Assert.ThrowsExactly<InvalidOperationException>(() => loaded.GetTrainingModel());
        StringAssert.Contains(e.Message, "saved without its float training weights");
        var tokens = _ml.Transforms.Text.TokenizeIntoWords("Tokens", nameof(TextRow.Text)).Append(_ml.Transforms.Conversion.MapValueToKey("Tokens")).Fit(_train).Transform(_train);
        var fineTune = Assert.ThrowsExactly<InvalidOperationException>(() => new MLContext().Transforms.KureFineTune(loaded).Fit(tokens));
        StringAssert.Contains(Flatten(fineTune), "KeepTrainingWeights");
        loaded.Dispose();

        var keep = TinyText.Options(epochs: 1);
        keep.KeepTrainingWeights = true;
        var kept = Pipeline(_ml, keep).Fit(_train);
        using var keptStream = new MemoryStream();
        _ml.Model.Save(kept, _train.Schema, keptStream);
        Assert.IsTrue(ModelZip.EntryNames(keptStream.ToArray()).Any(n => n.EndsWith("QuantizedLanguageModel.bin", StringComparison.Ordinal)));
        var keptLoaded = TransformerOf(new MLContext().Model.Load(new MemoryStream(keptStream.ToArray()), out _));
        Assert.IsTrue(keptLoaded.HasTrainingWeights && keptLoaded.KeepTrainingWeights);
        // Saved again before anything needs the torch model (as a scoring-only app would), the training stream is kept byte for byte.
        using var resaved = new MemoryStream();
        new MLContext().Model.Save(keptLoaded, null, resaved);
        CollectionAssert.AreEqual(ModelZip.Entry(keptStream.ToArray(), "QuantizedLanguageModel.bin"), ModelZip.Entry(resaved.ToArray(), "QuantizedLanguageModel.bin"));
        Assert.AreEqual(TransformerOf(kept).GetTrainingModel().Vocabulary.Count, keptLoaded.GetTrainingModel().Vocabulary.Count);
        keptLoaded.Dispose();
        TransformerOf(kept).Dispose();
    }

    [TestMethod]
    public void The_engine_scores_a_trained_model_as_the_libtorch_forward_does()
    {
        // The transformer scores with the managed engine; the torch network it was packed from is the independent reference.
        var lm = TransformerOf(_model);
        var rows = TinyText.Rows(30, seed: 9).Concat(TinyText.ShuffledRows(30, seed: 9)).ToArray();
        var (features, perplexity) = Outputs(_model, _ml.Data.LoadFromEnumerable(rows));
        var network = lm.GetTrainingModel().Network;
        var device = TorchSharp.torch.CPU;
        var hidden = new float[lm.HiddenSize];
        double total = 0, engineTotal = 0;
        int count = 0;
        for (int r = 0; r < rows.Length; r++)
        {
            var ids = new List<long> { lm.Keys.EndOfSequenceId };
            foreach (var word in rows[r].Text.Split(' ')) ids.Add(lm.Vocabulary.IdOf(word));
            var (sum, n) = LanguageModelScoring.Score(network, device, ids.ToArray(), hidden);
            for (int i = 0; i < hidden.Length; i++) Assert.AreEqual(hidden[i], features[r][i], 1e-5, $"row {r}, feature {i}");
            Assert.AreEqual(Math.Exp(sum / n), perplexity[r], 1e-4 * Math.Exp(sum / n), $"row {r}");
            total += sum;
            engineTotal += Math.Log(perplexity[r]) * n;
            count += n;
        }
        // The data set's perplexity agrees to 4 significant digits.
        Assert.AreEqual(Math.Exp(total / count), Math.Exp(engineTotal / count), 5e-5 * Math.Exp(total / count));
        Assert.AreEqual(Math.Exp(total / count), lm.Evaluate(_ml.Transforms.Text.TokenizeIntoWords("Tokens", nameof(TextRow.Text))
            .Append(_ml.Transforms.Conversion.MapValueToKey("Tokens")).Fit(_train).Transform(_ml.Data.LoadFromEnumerable(rows))).Perplexity, 5e-5 * Math.Exp(total / count));
    }

    [TestMethod]
    public void Damaged_model_stream_gives_a_clear_error()
    {
        using var stream = new MemoryStream();
        _ml.Model.Save(_model, _train.Schema, stream);
        var bytes = stream.ToArray();
        // Flip a byte inside the stored packed model (the largest entry), then load.
        Assert.IsTrue(ModelZip.EntryNames(bytes).Any(e => e.EndsWith("PackedLanguageModel.bin", StringComparison.Ordinal)), string.Join(", ", ModelZip.EntryNames(bytes)));
        var damaged = new MemoryStream(ModelZip.Rewrite(bytes, (name, data) =>
        {
            if (name.EndsWith("PackedLanguageModel.bin", StringComparison.Ordinal)) data[data.Length / 2] ^= 0x5A;
            return data;
        }));
        var e = Assert.ThrowsExactly<InvalidOperationException>(() => new MLContext().Model.Load(damaged, out _));
        StringAssert.Contains(Flatten(e), "The quantized language model inside this ML.NET model could not be read");
        StringAssert.Contains(Flatten(e), "checksum");
    }

    [TestMethod]
    public void PredictionEngine_matches_Transform_and_is_safe_across_threads()
    {
        var engine = _ml.Model.CreatePredictionEngine<TextRow, Prediction>(_model);
        var rows = TinyText.Rows(6, seed: 21).ToArray();
        var (features, perplexity) = Outputs(_model, _ml.Data.LoadFromEnumerable(rows));
        for (int i = 0; i < rows.Length; i++)
        {
            var p = engine.Predict(rows[i]);
            CollectionAssert.AreEqual(features[i], p.Features);
            Assert.AreEqual(perplexity[i], p.FeaturesPerplexity);
        }
        var results = new float[4][];
        Parallel.For(0, 4, t =>
        {
            var own = _ml.Model.CreatePredictionEngine<TextRow, Prediction>(_model);
            for (int i = 0; i < 5; i++) results[t] = own.Predict(rows[t]).Features;
        });
        for (int t = 0; t < 4; t++) CollectionAssert.AreEqual(features[t], results[t]);
    }

    [TestMethod]
    public void Wrong_type_and_missing_column_are_schema_errors_naming_the_column()
    {
        var options = TinyText.Options();
        var wrongType = _ml.Transforms.QuantizedLstm("Features", "Text", options);
        var e1 = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => wrongType.Fit(_train));
        StringAssert.Contains(e1.Message, "'Text'");
        StringAssert.Contains(e1.Message, "Vector<Key>");
        StringAssert.Contains(e1.Message, "String");
        var e2 = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => wrongType.GetOutputSchema(ShapeOf(_train.Schema)));
        StringAssert.Contains(e2.Message, "'Text'");
        var missing = _ml.Transforms.QuantizedLstm("Features", "NoSuchColumn", options);
        var e3 = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => missing.Fit(_train));
        StringAssert.Contains(e3.Message, "NoSuchColumn");
        var e4 = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => missing.GetOutputSchema(ShapeOf(_train.Schema)));
        StringAssert.Contains(e4.Message, "NoSuchColumn");
        // The fitted transformer checks the schema it is applied to as well.
        var transformer = TransformerOf(_model);
        var e5 = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => transformer.GetOutputSchema(_train.Schema));
        StringAssert.Contains(e5.Message, "Tokens");
    }

    private IDataView Texts(params string[] texts) => _ml.Data.LoadFromEnumerable(texts.Select(t => new TextRow { Text = t }));

    [TestMethod]
    public void By_default_unseen_words_read_one_unk_token_and_an_empty_row_scores_NaN()
    {
        Assert.AreEqual(UnknownTokenHandling.MapToUnknown, TransformerOf(_model).UnknownTokens);
        Assert.AreEqual(Vocabulary.UnknownToken, TransformerOf(_model).GetTrainingModel().Vocabulary.Tokens[^2], "<unk> comes before <eos>");
        var (features, perplexity) = Outputs(_model, Texts("the zebra sat", "the giraffe sat", "the cat sat", "zebra", "", "the cat sat on the mat"));
        CollectionAssert.AreEqual(features[0], features[1], "two unseen words are the same <unk> token");
        Assert.AreEqual(perplexity[0], perplexity[1]);
        CollectionAssert.AreNotEqual(features[0], features[2], "<unk> is not the seen word");
        Assert.IsTrue(float.IsFinite(perplexity[0]) && float.IsFinite(perplexity[3]), $"{perplexity[0]}, {perplexity[3]}");
        Assert.IsTrue(float.IsNaN(perplexity[4]), "no token to predict");
        Assert.IsTrue(features[4].Any(x => x != 0), "the state after the row separator");
        Assert.IsTrue(perplexity[0] > perplexity[5], $"an unseen word costs more than a training sentence: {perplexity[0]} vs {perplexity[5]}");
    }

    [TestMethod]
    public void Strict_mode_makes_unknown_words_and_empty_rows_errors_naming_column_and_row()
    {
        var strict = TinyText.Options(epochs: 1);
        strict.UnknownTokens = UnknownTokenHandling.Strict;
        var model = Pipeline(_ml, strict).Fit(_train);
        // ML.NET reads with parallel cursors and wraps a worker's exception: the reason is the inner one.
        var e = Assert.ThrowsExactly<InvalidOperationException>(() => Outputs(model, Texts("the cat sat on the mat", "the zebra sat")));
        StringAssert.Contains(Flatten(e), "Column 'Tokens', row 1, token 1");
        StringAssert.Contains(Flatten(e), "missing value");
        StringAssert.Contains(Flatten(e), "UnknownTokens = Strict");

        var e2 = Assert.ThrowsExactly<InvalidOperationException>(() => Outputs(model, Texts("the cat sat", "   ")));
        StringAssert.Contains(Flatten(e2), "Column 'Tokens', row 1");
        StringAssert.Contains(Flatten(e2), "empty");
        TransformerOf(model).Dispose();

        var e3 = Assert.ThrowsExactly<InvalidOperationException>(() => Pipeline(_ml, strict).Fit(
            _ml.Data.LoadFromEnumerable(TinyText.Rows(20).Append(new TextRow { Text = "" }))));
        StringAssert.Contains(Flatten(e3), "row 20");
    }

    [TestMethod]
    public void Skip_mode_drops_unknown_words_and_a_scoring_pass_survives_rows_with_none_left()
    {
        var skip = TinyText.Options(epochs: 1);
        skip.UnknownTokens = UnknownTokenHandling.Skip;
        var model = Pipeline(_ml, skip).Fit(_train);
        Assert.IsFalse(TransformerOf(model).GetTrainingModel().Vocabulary.Tokens.Contains(Vocabulary.UnknownToken));
        var (features, perplexity) = Outputs(model, Texts("the zebra sat", "the sat", "zebra", ""));
        CollectionAssert.AreEqual(features[1], features[0], "the unknown word is dropped");
        Assert.AreEqual(perplexity[1], perplexity[0]);
        Assert.IsTrue(float.IsNaN(perplexity[2]) && float.IsNaN(perplexity[3]));
        CollectionAssert.AreEqual(features[3], features[2], "both are the state after the row separator alone");

        // A long scoring pass in which every 7th row has no known word: every row comes out, those with NaN.
        var rows = Enumerable.Range(0, 300).Select(i => i % 7 == 3 ? "zebra giraffe" : "the cat sat on the mat").ToArray();
        var (_, all) = Outputs(model, Texts(rows));
        Assert.HasCount(300, all);
        Assert.AreEqual(rows.Count(r => r.StartsWith("zebra")), all.Count(float.IsNaN));
        TransformerOf(model).Dispose();
    }

    [TestMethod]
    public void Training_words_seen_fewer_than_MinimumTokenCount_times_are_trained_as_unk()
    {
        // "ocelot" occurs once in training: by default it is <unk>, so it reads like a word never seen at all.
        var data = _ml.Data.LoadFromEnumerable(TinyText.Rows(60).Append(new TextRow { Text = "the ocelot sat on the mat" }));
        var options = TinyText.Options(epochs: 2);
        var model = Pipeline(_ml, options).Fit(data);
        var (features, _) = Outputs(model, Texts("the ocelot sat", "the zebra sat"));
        CollectionAssert.AreEqual(features[1], features[0]);
        var lm = TransformerOf(model);
        Assert.IsFalse(lm.GetTrainingModel().Vocabulary.Tokens.Contains("ocelot"));
        Assert.IsTrue(lm.GetTrainingModel().Vocabulary.Tokens.Contains("sat"));
        lm.Dispose();

        options.MinimumTokenCount = 1;
        var everyWord = Pipeline(_ml, options).Fit(data);
        var (own, _) = Outputs(everyWord, Texts("the ocelot sat", "the zebra sat"));
        CollectionAssert.AreNotEqual(own[1], own[0], "with MinimumTokenCount 1 the word has a token of its own");
        Assert.IsTrue(TransformerOf(everyWord).GetTrainingModel().Vocabulary.Tokens.Contains("ocelot"));
        TransformerOf(everyWord).Dispose();

        options.MinimumTokenCount = 0;
        var e = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => Pipeline(_ml, options));
        StringAssert.Contains(e.Message, "MinimumTokenCount must be at least 1");
    }

    [TestMethod]
    public void Validation_words_the_keys_do_not_know_read_unk_by_default_and_are_errors_naming_the_validation_data_in_strict_mode()
    {
        var keys = _ml.Transforms.Text.TokenizeIntoWords("Tokens", nameof(TextRow.Text)).Append(_ml.Transforms.Conversion.MapValueToKey("Tokens")).Fit(_train);
        var options = TinyText.Options(epochs: 1);
        options.ValidationData = keys.Transform(Texts("the cat sat", "the zebra sat"));
        using (var model = _ml.Transforms.QuantizedLstm("Features", "Tokens", options).Fit(keys.Transform(_train)))
            Assert.IsTrue(double.IsFinite(model.History[^1].ValidationLoss), "validated with the unseen word as <unk>");

        options.UnknownTokens = UnknownTokenHandling.Strict;
        var e = Assert.ThrowsExactly<InvalidOperationException>(() => _ml.Transforms.QuantizedLstm("Features", "Tokens", options).Fit(keys.Transform(_train)));
        StringAssert.Contains(Flatten(e), "Column 'Tokens', row 1, token 1: key 0, a missing value");
        StringAssert.Contains(Flatten(e), "(validation data)");
    }

    [TestMethod]
    public void The_argument_and_options_overloads_train_the_same_model_by_default()
    {
        var ml = new MLContext(seed: 4);
        var data = ml.Data.LoadFromEnumerable(TinyText.Rows(30));
        var keys = ml.Transforms.Text.TokenizeIntoWords("Tokens", nameof(TextRow.Text)).Append(ml.Transforms.Conversion.MapValueToKey("Tokens")).Fit(data);
        var tokens = keys.Transform(data);
        var options = new QuantizedRecurrentLanguageModelOptions();
        options.Training.Epochs = 1;
        using var simple = ml.Transforms.QuantizedLstm("Features", "Tokens", epochs: 1).Fit(tokens);
        using var full = ml.Transforms.QuantizedLstm("Features", "Tokens", options).Fit(tokens);
        Assert.AreEqual(128, full.HiddenSize);
        Assert.AreEqual("twn", full.GetTrainingModel().Options.Recurrent.WeightQuantizer.ToString());
        Assert.AreEqual(RecurrentNormalization.Weight, full.GetTrainingModel().Options.Recurrent.Normalization);
        CollectionAssert.AreEqual(simple.Transform(tokens).GetColumn<float[]>("Features").First(), full.Transform(tokens).GetColumn<float[]>("Features").First());

        options.Training.Seed = 9;
        var e = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.Transforms.QuantizedLstm("Features", "Tokens", options));
        StringAssert.Contains(e.Message, "Training.Seed (9) is not read on the ML.NET path");
    }

    [TestMethod]
    public void MLContext_CancelExecution_stops_Fit_of_the_LM_and_the_classifier_and_KURE_fine_tuning()
    {
        // CancelExecution is internal to ML.NET (AutoML calls it); it reaches trainers through the host.
        var cancel = typeof(MLContext).GetMethod("CancelExecution", System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Public)!;
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(TinyText.Rows(40));
        var options = TinyText.Options(epochs: 5000);
        options.Training.ProgressInterval = 1;
        int reports = 0;
        options.Progress = new SynchronousProgress<TrainingProgress>(_ => { if (Interlocked.Increment(ref reports) == 1) cancel.Invoke(ml, null); });
        Assert.ThrowsExactly<OperationCanceledException>(() => Pipeline(ml, options).Fit(data));
        Assert.AreEqual(1, reports, "the step after the call is not taken");

        var ml2 = new MLContext(seed: 1);
        var tokens = _ml.Transforms.Text.TokenizeIntoWords("Tokens", nameof(TextRow.Text)).Append(_ml.Transforms.Conversion.MapValueToKey("Tokens")).Fit(_train).Transform(_train);
        int kureReports = 0;
        var kure = new KureFineTuneOptions { Epochs = 5000, Progress = new SynchronousProgress<TrainingProgress>(_ => { if (Interlocked.Increment(ref kureReports) == 1) cancel.Invoke(ml2, null); }) };
        Assert.ThrowsExactly<OperationCanceledException>(() => ml2.Transforms.KureFineTune(TransformerOf(_model), kure).Fit(tokens));
        Assert.AreEqual(1, kureReports);

        var ml3 = new MLContext(seed: 1);
        var classifier = new SequenceClassifierTrainerOptions { FeatureColumnName = "Tokens" };
        classifier.Training.Epochs = 5000;
        classifier.Training.ProgressInterval = 1;
        int classifierReports = 0;
        classifier.Progress = new SynchronousProgress<TrainingProgress>(_ => { if (Interlocked.Increment(ref classifierReports) == 1) cancel.Invoke(ml3, null); });
        var labelled = ml3.Data.LoadFromEnumerable(TinyText.Rows(40));
        Assert.ThrowsExactly<OperationCanceledException>(() => ml3.Transforms.Text.TokenizeIntoWords("Tokens", nameof(TextRow.Text))
            .Append(ml3.Transforms.Conversion.MapValueToKey("Tokens")).Append(ml3.BinaryClassification.Trainers.QuantizedGru(classifier)).Fit(labelled));
        Assert.AreEqual(1, classifierReports);
    }

    [TestMethod]
    public void Two_fits_at_once_with_the_same_seed_give_the_model_one_fit_alone_gives()
    {
        // Each run draws from its own generators (initialization, dropout, stochastic rounding), not libtorch's global one.
        var rows = TinyText.Rows(40).ToArray();
        float[] Fit()
        {
            var ml = new MLContext(seed: 6);
            var data = ml.Data.LoadFromEnumerable(rows);
            var options = TinyText.Options(epochs: 2);
            options.Model.EmbeddingDropout = 0.3;
            options.Model.Recurrent.Dropout = 0.3;
            options.Model.Recurrent.Layers = 2;
            options.Model.Recurrent.WeightQuantizer = QuantizerRegistry.Parse("uniform3-sr");
            var model = Pipeline(ml, options).Fit(data);
            try { return model.Transform(data).GetColumn<float[]>("Features").First(); }
            finally { TransformerOf(model).Dispose(); }
        }
        var alone = Fit();
        var together = new float[2][];
        Parallel.For(0, 2, new ParallelOptions { MaxDegreeOfParallelism = 2 }, i => together[i] = Fit());
        CollectionAssert.AreEqual(alone, together[0]);
        CollectionAssert.AreEqual(alone, together[1]);
    }

    [TestMethod]
    public void Same_MLContext_seed_gives_the_same_model_and_another_seed_a_different_one()
    {
        var options = TinyText.Options(epochs: 1);
        var rows = TinyText.Rows(40).ToArray();
        float[] Run(int seed)
        {
            var ml = new MLContext(seed: seed);
            var data = ml.Data.LoadFromEnumerable(rows);
            var model = Pipeline(ml, options).Fit(data);
            var features = model.Transform(data).GetColumn<float[]>("Features").First();
            TransformerOf(model).Dispose();
            return features;
        }
        var a = Run(5);
        CollectionAssert.AreEqual(a, Run(5));
        CollectionAssert.AreNotEqual(a, Run(6));
        options.Seed = 99; // an explicit seed wins over the MLContext's
        CollectionAssert.AreEqual(Run(1), Run(2));
    }

    [TestMethod]
    public void Exposes_history_size_report_generation_and_the_model()
    {
        var t = TransformerOf(_model);
        Assert.AreEqual(TinyText.Epochs, t.History.Count);
        Assert.IsLessThan(t.History[0].TrainingLoss, t.History[^1].TrainingLoss);
        Assert.AreEqual(TinyText.Hidden, t.HiddenSize);
        Assert.AreEqual(RecurrentCellKind.Lstm, t.Cell);
        Assert.AreEqual("Features", t.OutputColumnName);
        Assert.AreEqual("FeaturesPerplexity", t.PerplexityColumnName);
        Assert.AreEqual(t.KnownKeys.Count + 2, t.GetTrainingModel().Vocabulary.Count, "the known keys, <unk> and <eos>");
        Assert.AreEqual("<eos>", t.GetTrainingModel().Vocabulary.Tokens[^1]);
        Assert.Contains("cat", t.GetTrainingModel().Vocabulary.Tokens);
        var report = t.SizeReport();
        Assert.IsGreaterThan(0L, report.PackedBytes);
        var text = t.Generate("the cat", 8, temperature: 0.5, seed: 4);
        Assert.AreEqual(text, t.Generate("the cat", 8, temperature: 0.5, seed: 4));
        Assert.IsTrue(text.Split(' ', StringSplitOptions.RemoveEmptyEntries).All(w => t.GetTrainingModel().Vocabulary.Tokens.Contains(w)), text);
        var keys = t.Generate(new uint[] { (uint)t.KnownKeys[0] }, 5, temperature: 0);
        Assert.IsTrue(keys.Length <= 5 && keys.All(k => t.KnownKeys.Contains(k)));
        Assert.AreEqual(t.Generate("the giraffe", 6, temperature: 0.5, seed: 1), t.Generate("the zebra", 6, temperature: 0.5, seed: 1), "unseen prompt words are both <unk>");
    }

    [TestMethod]
    public void Gru_variant_and_simple_overload_fit_and_transform()
    {
        var ml = new MLContext(seed: 1);
        var log = new List<string>();
        ml.Log += (_, e) => { lock (log) log.Add(e.Message); };
        var data = ml.Data.LoadFromEnumerable(TinyText.Rows(30));
        var pipeline = ml.Transforms.Text.TokenizeIntoWords("Tokens", nameof(TextRow.Text))
            .Append(ml.Transforms.Conversion.MapValueToKey("Tokens"))
            .Append(ml.Transforms.QuantizedGru("Features", "Tokens", hiddenSize: 8, weightQuantizer: QuantizerKind.BinaryWeightNet, epochs: 1));
        var model = pipeline.Fit(data);
        var t = TransformerOf(model);
        Assert.AreEqual(RecurrentCellKind.Gru, t.Cell);
        var features = model.Transform(data).GetColumn<float[]>("Features").ToArray();
        Assert.IsTrue(features.All(f => f.Length == 8 && f.All(float.IsFinite)));
        // Training logs through ML.NET's channel, like ML.NET's own trainers.
        Assert.IsTrue(log.Any(m => m.Contains("QuantizedGru") && m.Contains("Epoch 1/1")), string.Join("\n", log.Where(m => m.Contains("Quantized"))));
        t.Dispose();
    }

    [TestMethod]
    public void Character_keys_train_and_generate_text()
    {
        var ml = new MLContext(seed: 2);
        var data = ml.Data.LoadFromEnumerable(TinyText.Rows(30));
        var options = TinyText.Options(epochs: 2);
        var model = ml.Transforms.Text.TokenizeIntoCharactersAsKeys("Chars", nameof(TextRow.Text), useMarkerCharacters: false)
            .Append(ml.Transforms.QuantizedLstm("Features", "Chars", options)).Fit(data);
        var t = TransformerOf(model);
        Assert.IsTrue(t.GetTrainingModel().Vocabulary.IsCharacterLevel);
        Assert.IsLessThan(40, t.GetTrainingModel().Vocabulary.Count, "only the characters seen become tokens");
        var text = t.Generate("the ", 10, temperature: 0);
        Assert.IsTrue(text.All(c => char.IsLetter(c) || c == ' ' || c == '.'), text);
        var perplexity = model.Transform(data).GetColumn<float>("FeaturesPerplexity").ToArray();
        Assert.IsTrue(perplexity.All(float.IsFinite));
        t.Dispose();
    }

    // SchemaShape.Create is internal to ML.NET; pipelines call it for users.
    private static SchemaShape ShapeOf(DataViewSchema schema) =>
        (SchemaShape)typeof(SchemaShape).GetMethod("Create", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Static)!.Invoke(null, [schema])!;

    /// <summary>An exception's message and those of its inner exceptions, in one string.</summary>
    internal static string Flatten(Exception e)
    {
        var s = "";
        for (var x = e; x is not null; x = x.InnerException) s += x.Message + " | ";
        return s;
    }
}

/// <summary>Tiny word data: a few sentence templates; label = the sentence is about an animal.</summary>
internal static class TinyText
{
    public const int Hidden = 24;
    public const int Epochs = 8;

    private static readonly (string Text, bool Animal)[] Sentences =
    [
        ("the cat sat on the mat", true), ("a dog ran to the park", true), ("the bird sang all day", true),
        ("we ate the red apple", false), ("they drank cold water today", false), ("i baked a warm bread", false),
    ];

    public static IEnumerable<QuantizedLanguageModelTransformerTests.TextRow> Rows(int count, int seed = 7)
    {
        var random = new Random(seed);
        for (int i = 0; i < count; i++)
        {
            var (text, animal) = Sentences[random.Next(Sentences.Length)];
            yield return new() { Text = text, Label = animal };
        }
    }

    public static IEnumerable<QuantizedLanguageModelTransformerTests.TextRow> ShuffledRows(int count, int seed = 7)
    {
        var random = new Random(seed + 1000);
        foreach (var row in Rows(count, seed))
        {
            var words = row.Text.Split(' ');
            string shuffled;
            do shuffled = string.Join(' ', words.OrderBy(_ => random.Next())); while (shuffled == row.Text);
            yield return new() { Text = shuffled, Label = row.Label };
        }
    }

    public static QuantizedRecurrentLanguageModelOptions Options(int epochs = Epochs) => new()
    {
        Model = new LanguageModelOptions
        {
            EmbeddingSize = 16,
            Recurrent = new QuantizedRecurrentOptions { HiddenSize = Hidden, WeightQuantizer = new QuantizerOptions { Kind = QuantizerKind.TernaryWeightNet } },
        },
        Training = new TrainingOptions
        {
            Epochs = epochs, BatchSize = 4, SequenceLength = 12, Optimizer = OptimizerKind.Adam, LearningRate = 0.01,
            LearningRateDecay = 1, GradientClipNorm = 1,
        },
    };
}
