using Microsoft.ML;
using Microsoft.ML.Data;

namespace Microsoft.ML.Quantized.Tests.MLNet;

[TestClass]
public sealed class KureClassifierFineTuneTests
{
    private static MLContext _ml = null!;
    private static IDataView _text = null!, _textKeys = null!, _frames = null!, _frameKeys = null!;
    private static TransformerChain<ITransformer> _textChain = null!, _frameChain = null!;
    private static BinaryPredictionTransformer<SequenceClassifierBinaryModelParameters> _binary = null!, _binaryTuned = null!;
    private static MulticlassPredictionTransformer<SequenceClassifierMulticlassModelParameters> _multiclass = null!, _multiclassTuned = null!;

    private static KureFineTuneOptions FastOptions() => new() { Kure = new KureOptions { Lambda = 1.0 }, Epochs = 3, LearningRate = 1e-2, BatchSize = 8 };

    [ClassInitialize]
    public static void Fit(TestContext _)
    {
        _ml = new MLContext(seed: 7);
        _text = _ml.Data.LoadFromEnumerable(TextData.Rows(120, seed: 1));
        _textChain = AsChain(QuantizedSequenceTrainerTests.BinaryPipeline(_ml, QuantizedSequenceTrainerTests.Options(epochs: 3)).Fit(_text));
        _binary = (BinaryPredictionTransformer<SequenceClassifierBinaryModelParameters>)_textChain.LastTransformer;
        _textKeys = Prefix(_textChain).Transform(_text);
        _binaryTuned = _ml.Transforms.KureFineTune(_binary, FastOptions()).Fit(_textKeys);

        _frames = _ml.Data.LoadFromEnumerable(FrameData.Rows(150, seed: 1));
        var gru = QuantizedSequenceTrainerTests.MulticlassPipeline(_ml, QuantizedSequenceTrainerTests.Options(epochs: 3, frameSize: FrameData.FrameSize), gru: true);
        _frameChain = AsChain(gru.Fit(_frames));
        _multiclass = (MulticlassPredictionTransformer<SequenceClassifierMulticlassModelParameters>)_frameChain.LastTransformer;
        _frameKeys = Prefix(_frameChain).Transform(_frames);
        _multiclassTuned = _ml.Transforms.KureFineTune(_multiclass, FastOptions()).Fit(_frameKeys);
    }

    [ClassCleanup]
    public static void Cleanup()
    {
        QuantizedSequenceTrainerTests.DisposeModel(_textChain);
        QuantizedSequenceTrainerTests.DisposeModel(_frameChain);
        _binaryTuned?.Model.Dispose();
        _multiclassTuned?.Model.Dispose();
    }

    /// <summary>A fitted pipeline (a typed chain) as a chain of <see cref="ITransformer"/>.</summary>
    private static TransformerChain<ITransformer> AsChain(ITransformer fitted) => new(((IEnumerable<ITransformer>)fitted).ToArray());

    /// <summary>The chain without its classifier.</summary>
    private static TransformerChain<ITransformer> Prefix(TransformerChain<ITransformer> chain) => new(chain.Take(chain.Count() - 1).ToArray());

    private static double[] RecurrentKurtosis(SequenceClassifierModelParameters model) =>
        KurtosisRegularizer.Select(model.GetTrainingClassifier().Network.WeightMatrices(), KurtosisTensors.Recurrent).Select(m => Kurtosis.Value(m.Weight)).ToArray();

    private static double Distance(SequenceClassifierModelParameters model) => RecurrentKurtosis(model).Average(k => Math.Abs(k - KureOptions.UniformKurtosis));

    private static void AssertSameKind(SequenceClassifierModelParameters source, SequenceClassifierModelParameters tuned)
    {
        Assert.AreEqual(source.GetTrainingClassifier().Options.Recurrent.Cell, tuned.GetTrainingClassifier().Options.Recurrent.Cell);
        Assert.AreEqual(source.GetTrainingClassifier().Options.Recurrent.WeightQuantizer.ToString(), tuned.GetTrainingClassifier().Options.Recurrent.WeightQuantizer.ToString());
        Assert.AreEqual(source.InputKind, tuned.InputKind);
        Assert.AreEqual(source.KeyCount, tuned.KeyCount);
        Assert.AreEqual(source.FeatureColumnName, tuned.FeatureColumnName);
        Assert.AreEqual(source.ClassCount, tuned.ClassCount);
        Assert.AreEqual(source.History.Count + 3, tuned.History.Count);
        Assert.AreEqual(3, source.History.Count, "the source model is left as it is");
    }

    [TestMethod]
    public void A_lambda_search_keeps_the_candidate_whose_quantized_copy_has_the_lowest_validation_log_loss()
    {
        var valid = Prefix(_textChain).Transform(_ml.Data.LoadFromEnumerable(TextData.Rows(60, seed: 9)));
        var quantizer = new QuantizerOptions { Kind = QuantizerKind.Uniform, Bits = 3 };
        KureFineTuneOptions Options(double[]? candidates, double lambda)
        {
            var options = FastOptions();
            options.Seed = 4;
            options.ValidationData = valid;
            options.LambdaCandidates = candidates;
            options.SearchQuantizer = quantizer;
            options.Kure = new KureOptions { Lambda = lambda };
            return options;
        }
        double[] lambdas = [0, 1];
        var single = lambdas.Select(l => _ml.Transforms.KureFineTune(_binary, Options(null, l)).Fit(_textKeys)).ToArray();
        var losses = single.Select(t =>
        {
            var quantized = t.WithQuantization(quantizer);
            try
            {
                return _ml.BinaryClassification.Evaluate(quantized.Transform(valid)).LogLoss;
            }
            finally
            {
                quantized.Model.Dispose();
            }
        }).ToArray();
        int best = losses[0] <= losses[1] ? 0 : 1;

        var log = new List<string>();
        var ml = new MLContext(seed: 7);
        ml.Log += (_, e) => { lock (log) log.Add(e.Message); };
        var searched = ml.Transforms.KureFineTune(_binary, Options(lambdas, 0.5)).Fit(_textKeys);
        try
        {
            CollectionAssert.AreEqual(single[best].Transform(valid).GetColumn<float>("Score").ToArray(), searched.Transform(valid).GetColumn<float>("Score").ToArray(),
                $"losses {losses[0]:F4}, {losses[1]:F4}");
            lock (log) Assert.IsTrue(log.Any(m => m.Contains($"kept lambda {lambdas[best]} ", StringComparison.Ordinal)), string.Join("\n", log.Where(m => m.Contains("lambda"))));
        }
        finally
        {
            searched.Model.Dispose();
            foreach (var t in single) t.Model.Dispose();
        }
    }

    [TestMethod]
    public void Fine_tuning_a_binary_classifier_moves_recurrent_kurtosis_toward_the_target_and_keeps_its_kind()
    {
        double before = Distance(_binary.Model), after = Distance(_binaryTuned.Model);
        Assert.IsLessThan(before / 2, after, $"|Kurt - 1.8|: before {before:F3} ({string.Join(", ", RecurrentKurtosis(_binary.Model).Select(k => k.ToString("F3")))}), after {after:F3}");
        AssertSameKind(_binary.Model, _binaryTuned.Model);
        var test = _ml.Data.LoadFromEnumerable(TextData.Rows(100, seed: 2));
        var metrics = _ml.BinaryClassification.Evaluate(Prefix(_textChain).Append<ITransformer>(_binaryTuned).Transform(test));
        Assert.IsGreaterThan(0.8, metrics.Accuracy, $"accuracy after fine-tuning {metrics.Accuracy}");
    }

    [TestMethod]
    public void Fine_tuning_a_multiclass_gru_moves_recurrent_kurtosis_toward_the_target_and_keeps_its_kind()
    {
        double before = Distance(_multiclass.Model), after = Distance(_multiclassTuned.Model);
        Assert.IsLessThan(before / 2, after, $"|Kurt - 1.8|: before {before:F3} ({string.Join(", ", RecurrentKurtosis(_multiclass.Model).Select(k => k.ToString("F3")))}), after {after:F3}");
        AssertSameKind(_multiclass.Model, _multiclassTuned.Model);
        Assert.AreEqual(RecurrentCellKind.Gru, _multiclassTuned.Model.GetTrainingClassifier().Options.Recurrent.Cell);
        var scored = _multiclassTuned.Transform(_frameKeys);
        Assert.IsTrue(scored.Schema["PredictedLabel"].Type is KeyDataViewType { Count: 3 }, scored.Schema["PredictedLabel"].Type.ToString());
        foreach (var s in scored.GetColumn<float[]>("Score")) Assert.AreEqual(1.0, s.Sum(), 1e-4);
    }

    [TestMethod]
    public void Fine_tuned_classifiers_save_load_and_predict_identically_in_their_pipelines()
    {
        var text = _ml.Data.LoadFromEnumerable(TextData.Rows(30, seed: 9));
        var frames = _ml.Data.LoadFromEnumerable(FrameData.Rows(30, seed: 9));
        foreach (var (prefix, tuned, source, schema, data, column) in new (TransformerChain<ITransformer>, ITransformer, ITransformer, DataViewSchema, IDataView, string)[]
        {
            (Prefix(_textChain), _binaryTuned, _binary, _text.Schema, text, "Score"),
            (Prefix(_frameChain), _multiclassTuned, _multiclass, _frames.Schema, frames, "Score"),
        })
        {
            var pipeline = prefix.Append(tuned);
            using var stream = new MemoryStream();
            _ml.Model.Save(pipeline, schema, stream);
            stream.Position = 0;
            var loaded = new MLContext().Model.Load(stream, out _);
            var expected = Scores(pipeline, data, column);
            var actual = Scores(loaded, data, column);
            for (int i = 0; i < expected.Length; i++) CollectionAssert.AreEqual(expected[i], actual[i], $"row {i}");
            var original = Scores(prefix.Append(source), data, column);
            Assert.IsTrue(original.Zip(expected).Any(p => !p.First.SequenceEqual(p.Second)), "fine-tuning changed the model");
            var reloaded = (ISingleFeaturePredictionTransformer<SequenceClassifierModelParameters>)AsChain(loaded).LastTransformer;
            Assert.AreEqual(((ISingleFeaturePredictionTransformer<SequenceClassifierModelParameters>)tuned).Model.History.Count, reloaded.Model.History.Count);
            reloaded.Model.Dispose();
        }
    }

    /// <summary>The score column of every row, as float arrays (one value for binary scores).</summary>
    private static float[][] Scores(ITransformer model, IDataView data, string column)
    {
        var output = model.Transform(data);
        return output.Schema[column].Type is VectorDataViewType
            ? output.GetColumn<float[]>(column).ToArray()
            : output.GetColumn<float>(column).Select(s => new[] { s }).ToArray();
    }

    [TestMethod]
    public void Bad_options_are_rejected_naming_the_option()
    {
        var lambda = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => _ml.Transforms.KureFineTune(_binary, lambda: -1));
        Assert.AreEqual("KureOptions.Lambda", lambda.ParamName);
        StringAssert.Contains(lambda.Message, "KureOptions.Lambda");
        var target = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() =>
            _ml.Transforms.KureFineTune(_multiclass, new KureFineTuneOptions { Kure = new KureOptions { Target = 0.5 } }));
        StringAssert.Contains(target.Message, "KureOptions.Target");
        var epochs = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => _ml.Transforms.KureFineTune(_multiclass, epochs: 0));
        StringAssert.Contains(epochs.Message, "KureFineTuneOptions.Epochs");
        var rate = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => _ml.Transforms.KureFineTune(_binary, new KureFineTuneOptions { LearningRate = double.NaN }));
        StringAssert.Contains(rate.Message, "KureFineTuneOptions.LearningRate");
        var batch = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => _ml.Transforms.KureFineTune(_binary, new KureFineTuneOptions { BatchSize = 0 }));
        StringAssert.Contains(batch.Message, "KureFineTuneOptions.BatchSize");
        var label = Assert.Throws<ArgumentException>(() => _ml.Transforms.KureFineTune(_binary, labelColumnName: ""));
        StringAssert.Contains(label.Message, "labelColumnName");
        var model = Assert.Throws<ArgumentException>(() => _ml.Transforms.KureFineTune((BinaryPredictionTransformer<SequenceClassifierBinaryModelParameters>)null!, FastOptions()));
        Assert.AreEqual("model", model.ParamName);
    }

    [TestMethod]
    public void Data_that_does_not_match_the_model_is_a_schema_error_naming_the_column()
    {
        var estimator = _ml.Transforms.KureFineTune(_binary, FastOptions());
        Assert.AreEqual("Tokens", estimator.FeatureColumnName);
        Assert.AreEqual("Label", estimator.LabelColumnName);
        // Raw text: no token-key column.
        var missing = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => estimator.Fit(_text));
        StringAssert.Contains(missing.Message, "Tokens");
        // Keys of another key type (a mapping fitted on other text).
        var otherKeys = _ml.Transforms.Text.TokenizeIntoWords("Tokens", "Text").Append(_ml.Transforms.Conversion.MapValueToKey("Tokens"))
            .Fit(_ml.Data.LoadFromEnumerable(TextData.Rows(3, seed: 4))).Transform(_text);
        var keys = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => estimator.Fit(otherKeys));
        StringAssert.Contains(keys.Message, "Tokens");
        StringAssert.Contains(keys.Message, "the key type the model was trained on");
        // A multiclass label of 2 classes where the model has 3.
        var twoClasses = _ml.Transforms.Conversion.MapValueToKey("Label")
            .Fit(_ml.Data.LoadFromEnumerable(FrameData.Rows(150, seed: 1).Where(r => r.Label != "third")))
            .Transform(_ml.Data.LoadFromEnumerable(FrameData.Rows(40, seed: 3).Where(r => r.Label != "third")));
        var classes = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => _ml.Transforms.KureFineTune(_multiclass, FastOptions()).Fit(twoClasses));
        StringAssert.Contains(classes.Message, "Label");
        StringAssert.Contains(classes.Message, "3 classes");
        // The estimator's schema check is the trainer's.
        var shape = _ml.Transforms.KureFineTune(_multiclass, FastOptions()).GetOutputSchema(KureFineTuneTests.ShapeOf(_frameKeys.Schema));
        Assert.IsTrue(shape.Any(c => c.Name == "Score") && shape.Any(c => c.Name == "PredictedLabel"));
    }
}
