using Microsoft.ML;
using Microsoft.ML.Data;

namespace Microsoft.ML.Quantized.Tests.MLNet;

[TestClass]
public sealed class KureFineTuneTests
{
    private static MLContext _ml = null!;
    private static IDataView _train = null!;
    private static TransformerChain<ITransformer> _tokenizer = null!;
    private static IDataView _tokens = null!;
    private static QuantizedRecurrentLanguageModelTransformer _model = null!;
    private static QuantizedRecurrentLanguageModelTransformer _tuned = null!;

    private static KureFineTuneOptions FastOptions() => new() { Epochs = 3, LearningRate = 1e-2, BatchSize = 4 };

    [ClassInitialize]
    public static void Fit(TestContext _)
    {
        _ml = new MLContext(seed: 3);
        _train = _ml.Data.LoadFromEnumerable(TinyText.Rows(80));
        var chain = (TransformerChain<QuantizedRecurrentLanguageModelTransformer>)QuantizedLanguageModelTransformerTests.Pipeline(_ml, TinyText.Options()).Fit(_train);
        _tokenizer = new TransformerChain<ITransformer>(chain.Take(2).ToArray());
        _tokens = _tokenizer.Transform(_train);
        _model = chain.LastTransformer;
        _tuned = _ml.Transforms.KureFineTune(_model, FastOptions()).Fit(_tokens);
    }

    [ClassCleanup]
    public static void Cleanup()
    {
        _tuned?.Dispose();
        _model?.Dispose();
    }

    private static double[] RecurrentKurtosis(QuantizedRecurrentLanguageModelTransformer t) =>
        KurtosisRegularizer.Select(t.GetTrainingModel().Network.WeightMatrices(), KurtosisTensors.Recurrent).Select(m => Kurtosis.Value(m.Weight)).ToArray();

    internal static SchemaShape ShapeOf(DataViewSchema schema) =>
        (SchemaShape)typeof(SchemaShape).GetMethod("Create", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Static)!.Invoke(null, [schema])!;

    private static (float[][] Features, float[] Perplexity) Outputs(ITransformer model, IDataView data)
    {
        var output = model.Transform(data);
        return (output.GetColumn<float[]>("Features").ToArray(), output.GetColumn<float>("FeaturesPerplexity").ToArray());
    }

    [TestMethod]
    public void A_lambda_search_keeps_the_candidate_whose_quantized_copy_has_the_lowest_validation_loss()
    {
        var valid = _tokenizer.Transform(_ml.Data.LoadFromEnumerable(TinyText.Rows(30, seed: 12)));
        var quantizer = new QuantizerOptions { Kind = QuantizerKind.Uniform, Bits = 3 };
        KureFineTuneOptions Options(double[]? candidates, double lambda)
        {
            var options = FastOptions();
            options.Seed = 5;
            options.ValidationData = valid;
            options.LambdaCandidates = candidates;
            options.SearchQuantizer = quantizer;
            options.Kure = new KureOptions { Lambda = lambda };
            return options;
        }
        // Each candidate alone, with the same seed; scored here the way the search says it scores them.
        double[] lambdas = [0, 1];
        var single = lambdas.Select(l => _ml.Transforms.KureFineTune(_model, Options(null, l)).Fit(_tokens)).ToArray();
        var losses = single.Select(t =>
        {
            using var quantized = t.WithQuantization(quantizer);
            return quantized.Evaluate(valid).CrossEntropy;
        }).ToArray();
        int best = losses[0] <= losses[1] ? 0 : 1;

        var log = new List<string>();
        var ml = new MLContext(seed: 3);
        ml.Log += (_, e) => { lock (log) log.Add(e.Message); };
        using var searched = ml.Transforms.KureFineTune(_model, Options(lambdas, 0.5)).Fit(_tokens);
        CollectionAssert.AreEqual(Outputs(single[best], _tokens).Features[0], Outputs(searched, _tokens).Features[0], $"losses {losses[0]:F4}, {losses[1]:F4}");
        lock (log) Assert.IsTrue(log.Any(m => m.Contains($"kept lambda {lambdas[best]} ", StringComparison.Ordinal)), string.Join("\n", log.Where(m => m.Contains("lambda"))));
        foreach (var t in single) t.Dispose();

        var noValidation = FastOptions();
        noValidation.LambdaCandidates = [0.01, 0.1];
        var e = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => _ml.Transforms.KureFineTune(_model, noValidation));
        StringAssert.Contains(e.Message, "ValidationData");
        noValidation.LambdaCandidates = [0.01, -1];
        noValidation.ValidationData = valid;
        e = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => _ml.Transforms.KureFineTune(_model, noValidation));
        StringAssert.Contains(e.Message, "LambdaCandidates must hold at least one finite lambda >= 0; got [0.01, -1]");
    }

    [TestMethod]
    public void Fine_tuning_moves_recurrent_kurtosis_toward_the_target_and_keeps_kind_and_columns()
    {
        double Distance(QuantizedRecurrentLanguageModelTransformer t) => RecurrentKurtosis(t).Average(k => Math.Abs(k - KureOptions.UniformKurtosis));
        double before = Distance(_model), after = Distance(_tuned);
        Assert.IsLessThan(before / 2, after, $"|Kurt - 1.8|: before {before:F3} ({string.Join(", ", RecurrentKurtosis(_model).Select(k => k.ToString("F3")))}), after {after:F3}");
        Assert.AreEqual(_model.Cell, _tuned.Cell);
        Assert.AreEqual(_model.InputColumnName, _tuned.InputColumnName);
        Assert.AreEqual(_model.OutputColumnName, _tuned.OutputColumnName);
        Assert.AreEqual(_model.PerplexityColumnName, _tuned.PerplexityColumnName);
        CollectionAssert.AreEqual(_model.KnownKeys.ToArray(), _tuned.KnownKeys.ToArray());
        Assert.AreEqual(_model.GetTrainingModel().Options.Recurrent.WeightQuantizer.ToString(), _tuned.GetTrainingModel().Options.Recurrent.WeightQuantizer.ToString());
        Assert.AreEqual(_model.History.Count + 3, _tuned.History.Count);
        Assert.AreEqual(TinyText.Epochs, _model.History.Count, "the source model is left as it is");
        var (features, perplexity) = Outputs(_tuned, _tokens);
        Assert.IsTrue(features.All(r => r.Length == TinyText.Hidden && r.All(float.IsFinite)));
        Assert.IsTrue(perplexity.All(p => float.IsFinite(p) && p >= 1));
        // The schema check of the estimator matches the transformer's output.
        var shape = _ml.Transforms.KureFineTune(_model).GetOutputSchema(ShapeOf(_tokens.Schema));
        Assert.IsTrue(shape.Any(c => c.Name == "Features") && shape.Any(c => c.Name == "FeaturesPerplexity"));
    }

    [TestMethod]
    public void Fine_tuned_pipeline_saves_loads_and_predicts_identically()
    {
        var pipeline = new TransformerChain<ITransformer>(_tokenizer.Append<ITransformer>(_tuned).ToArray());
        using var stream = new MemoryStream();
        _ml.Model.Save(pipeline, _train.Schema, stream);
        stream.Position = 0;
        var fresh = new MLContext();
        var loaded = fresh.Model.Load(stream, out _);
        var data = fresh.Data.LoadFromEnumerable(TinyText.Rows(20, seed: 5).Concat(TinyText.ShuffledRows(5, seed: 5)));
        var (f1, p1) = Outputs(pipeline, data);
        var (f2, p2) = Outputs(loaded, data);
        for (int i = 0; i < f1.Length; i++) CollectionAssert.AreEqual(f1[i], f2[i]);
        CollectionAssert.AreEqual(p1, p2);
        var original = Outputs(new TransformerChain<ITransformer>(_tokenizer.Append<ITransformer>(_model).ToArray()), data);
        CollectionAssert.AreNotEqual(original.Perplexity, p1, "fine-tuning changed the model");
        var copy = QuantizedLanguageModelTransformerTests.TransformerOf(loaded);
        Assert.AreEqual(_tuned.History.Count, copy.History.Count);
        copy.Dispose();
    }

    [TestMethod]
    public void WithQuantization_at_2_to_8_bits_changes_outputs_but_keeps_them_finite()
    {
        var (f0, p0) = Outputs(_tuned, _tokens);
        for (int bits = 2; bits <= 8; bits++)
        {
            using var quantized = _tuned.WithQuantization(new QuantizerOptions { Kind = QuantizerKind.Uniform, Bits = bits });
            Assert.AreEqual($"uniform{bits}", quantized.GetTrainingModel().Options.Recurrent.WeightQuantizer.ToString());
            Assert.AreEqual(_tuned.OutputColumnName, quantized.OutputColumnName);
            var (f, p) = Outputs(quantized, _tokens);
            Assert.IsTrue(f.All(r => r.All(float.IsFinite)) && p.All(float.IsFinite), $"{bits} bits: non-finite output");
            Assert.IsTrue(p.Zip(p0).Any(x => x.First != x.Second), $"{bits} bits: perplexity unchanged");
        }
        Assert.AreEqual("twn", _tuned.GetTrainingModel().Options.Recurrent.WeightQuantizer.ToString(), "the source is left as it is");
        var bad = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => _tuned.WithQuantization(new QuantizerOptions { Kind = QuantizerKind.Uniform, Bits = 9 }));
        StringAssert.Contains(bad.Message, "weights");

        var report = _tuned.RobustnessReport(_tokens, new RobustnessReportBuilder { BitWidths = [2, 4, 8], StepSizeMultipliers = [0.95], RecordGates = false });
        Assert.AreEqual("perplexity", report.MetricName);
        Assert.IsNotNull(report.AtBits(4));
        Assert.IsTrue(report.BitWidths.Concat(report.StepSizes).All(r => double.IsFinite(r.Metric)), report.ToMarkdown());
    }

    [TestMethod]
    public void Bad_kure_options_and_a_model_of_another_kind_are_rejected()
    {
        var lambda = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => _ml.Transforms.KureFineTune(_model, lambda: -1));
        Assert.AreEqual("KureOptions.Lambda", lambda.ParamName);
        StringAssert.Contains(lambda.Message, "KureOptions.Lambda");
        var target = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() =>
            _ml.Transforms.KureFineTune(_model, new KureFineTuneOptions { Kure = new KureOptions { Target = 0.5 } }));
        StringAssert.Contains(target.Message, "KureOptions.Target");
        var epochs = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => _ml.Transforms.KureFineTune(_model, epochs: 0));
        StringAssert.Contains(epochs.Message, "KureFineTuneOptions.Epochs");
        var other = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => _ml.Transforms.KureFineTune(_tokenizer, FastOptions()));
        Assert.AreEqual("model", other.ParamName);
        StringAssert.Contains(other.Message, nameof(QuantizedRecurrentLanguageModelTransformer));
        Assert.IsNotNull(_ml.Transforms.KureFineTune((ITransformer)_model, FastOptions()));
    }

    [TestMethod]
    public void Missing_or_wrong_token_column_is_a_schema_error_naming_the_column()
    {
        var estimator = _ml.Transforms.KureFineTune(_model, FastOptions());
        var missing = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => estimator.Fit(_train));
        StringAssert.Contains(missing.Message, "Tokens");
        var wrong = _ml.Transforms.CopyColumns("Tokens", "Text").Fit(_train).Transform(_train);
        var e = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => estimator.Fit(wrong));
        StringAssert.Contains(e.Message, "'Tokens'");
        StringAssert.Contains(e.Message, "Vector<Key>");
        var shape = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => estimator.GetOutputSchema(ShapeOf(_train.Schema)));
        StringAssert.Contains(shape.Message, "Tokens");
    }
}
