using Microsoft.ML;
using Microsoft.ML.Data;

namespace Microsoft.ML.Quantized.Tests.MLNet;

[TestClass]
public sealed class QuantizedSequenceTrainerTests
{
    public sealed class TextRow
    {
        public string Text { get; set; } = "";
        public bool Label { get; set; }
    }

    public sealed class FrameRow
    {
        [VectorType(FrameData.Length)]
        public float[] Features { get; set; } = [];
        public string Label { get; set; } = "";
    }

    public sealed class BinaryOutput
    {
        public bool PredictedLabel { get; set; }
        public float Score { get; set; }
        public float Probability { get; set; }
    }

    private static MLContext _ml = null!;
    private static IDataView _textTrain = null!, _textTest = null!, _frameTrain = null!, _frameTest = null!;
    private static ITransformer _binary = null!, _multiclass = null!;

    [ClassInitialize]
    public static void Fit(TestContext _)
    {
        _ml = new MLContext(seed: 5);
        _textTrain = _ml.Data.LoadFromEnumerable(TextData.Rows(240, seed: 1));
        _textTest = _ml.Data.LoadFromEnumerable(TextData.Rows(100, seed: 2));
        _frameTrain = _ml.Data.LoadFromEnumerable(FrameData.Rows(300, seed: 1));
        _frameTest = _ml.Data.LoadFromEnumerable(FrameData.Rows(120, seed: 2));
        _binary = BinaryPipeline(_ml, Options()).Fit(_textTrain);
        // The multiclass model pools the mean of its states, so saving, loading and the engine-vs-libtorch checks below cover a pooled head too.
        var multiclassOptions = Options(epochs: 10, frameSize: FrameData.FrameSize);
        multiclassOptions.Model.Pooling = SequencePooling.Mean;
        _multiclass = MulticlassPipeline(_ml, multiclassOptions).Fit(_frameTrain);
    }

    [ClassCleanup]
    public static void Cleanup()
    {
        DisposeModel(_binary);
        DisposeModel(_multiclass);
    }

    internal static SequenceClassifierTrainerOptions Options(int epochs = 4, int frameSize = 1, string features = "Features")
    {
        var options = new SequenceClassifierTrainerOptions { FrameSize = frameSize, FeatureColumnName = features };
        options.Model.Recurrent.HiddenSize = 16;
        options.Model.Recurrent.WeightQuantizer = new QuantizerOptions { Kind = QuantizerKind.TernaryWeightNet };
        options.Model.Recurrent.Normalization = RecurrentNormalization.Weight;
        options.Training.Epochs = epochs;
        options.Training.BatchSize = 16;
        options.Training.LearningRate = 0.01;
        return options;
    }

    internal static IEstimator<ITransformer> BinaryPipeline(MLContext ml, SequenceClassifierTrainerOptions options, bool gru = false)
    {
        options.FeatureColumnName = "Tokens";
        return ml.Transforms.Text.TokenizeIntoWords("Tokens", nameof(TextRow.Text))
            .Append(ml.Transforms.Conversion.MapValueToKey("Tokens"))
            .Append(gru ? ml.BinaryClassification.Trainers.QuantizedGru(options) : ml.BinaryClassification.Trainers.QuantizedLstm(options));
    }

    internal static IEstimator<ITransformer> MulticlassPipeline(MLContext ml, SequenceClassifierTrainerOptions options, bool gru = false) =>
        ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(gru ? ml.MulticlassClassification.Trainers.QuantizedGru(options) : ml.MulticlassClassification.Trainers.QuantizedLstm(options));

    /// <summary>Frees the torch tensors of a fitted or loaded chain (quantized transformers and model parameters).</summary>
    internal static void DisposeModel(ITransformer? model)
    {
        if (model is IEnumerable<ITransformer> chain)
            foreach (var t in chain) DisposeModel(t);
        else if (model is ISingleFeaturePredictionTransformer<SequenceClassifierModelParameters> p) p.Model.Dispose();
        else (model as IDisposable)?.Dispose();
    }

    [TestMethod]
    public void Binary_lstm_on_token_keys_beats_chance_through_BinaryClassification_Evaluate()
    {
        var scored = _binary.Transform(_textTest);
        Assert.AreEqual(NumberDataViewType.Single, scored.Schema["Score"].Type);
        Assert.AreEqual(NumberDataViewType.Single, scored.Schema["Probability"].Type);
        Assert.AreEqual(BooleanDataViewType.Instance, scored.Schema["PredictedLabel"].Type);
        var metrics = _ml.BinaryClassification.Evaluate(scored);
        Assert.IsGreaterThan(0.85, metrics.Accuracy, $"accuracy {metrics.Accuracy}");
        Assert.IsGreaterThan(0.9, metrics.AreaUnderRocCurve, $"AUC {metrics.AreaUnderRocCurve}");
        var scores = scored.GetColumn<float>("Score").ToArray();
        var probabilities = scored.GetColumn<float>("Probability").ToArray();
        var predicted = scored.GetColumn<bool>("PredictedLabel").ToArray();
        for (int i = 0; i < scores.Length; i++)
        {
            Assert.AreEqual(1 / (1 + Math.Exp(-scores[i])), probabilities[i], 1e-4);
            Assert.AreEqual(scores[i] > 0, predicted[i]);
        }
    }

    [TestMethod]
    public void Multiclass_lstm_on_float_frames_beats_chance_through_MulticlassClassification_Evaluate()
    {
        var scored = _multiclass.Transform(_frameTest);
        Assert.IsTrue(scored.Schema["Score"].Type is VectorDataViewType { Size: 3 }, scored.Schema["Score"].Type.ToString());
        Assert.IsTrue(scored.Schema["PredictedLabel"].Type is KeyDataViewType { Count: 3 }, scored.Schema["PredictedLabel"].Type.ToString());
        var metrics = _ml.MulticlassClassification.Evaluate(scored);
        Assert.IsGreaterThan(0.7, metrics.MicroAccuracy, $"accuracy {metrics.MicroAccuracy}");
        // Scores are probabilities; PredictedLabel maps back through the label's key values.
        foreach (var s in scored.GetColumn<float[]>("Score")) Assert.AreEqual(1.0, s.Sum(), 1e-4);
        var names = _ml.Transforms.Conversion.MapKeyToValue("PredictedText", "PredictedLabel").Fit(scored).Transform(scored)
            .GetColumn<string>("PredictedText").ToArray();
        var truth = _frameTest.GetColumn<string>("Label").ToArray();
        Assert.IsGreaterThan(0.7, names.Zip(truth).Count(p => p.First == p.Second) / (double)truth.Length);
    }

    [TestMethod]
    public async Task A_trainer_makes_a_sweep_runner_over_its_IDataView_columns()
    {
        var featurizer = _ml.Transforms.Text.TokenizeIntoWords("Tokens", nameof(TextRow.Text))
            .Append(_ml.Transforms.Conversion.MapValueToKey("Tokens")).Fit(_textTrain);
        var options = Options(epochs: 3);
        options.FeatureColumnName = "Tokens";
        var trainer = _ml.BinaryClassification.Trainers.QuantizedGru(options);
        var runner = trainer.CreateTrialRunner(featurizer.Transform(_textTrain), featurizer.Transform(_textTest));
        var result = await new Microsoft.ML.Quantized.Sweep.QuantizationExperiment(seed: 1)
            .SetSearchSpace(new Microsoft.ML.Quantized.Sweep.QuantizationSearchSpace
            {
                WeightQuantizers = [Microsoft.ML.Quantized.Sweep.QuantizerChoice.TernaryWeightNet],
                ActivationQuantizers = [Microsoft.ML.Quantized.Sweep.QuantizerChoice.Float],
                ActivationSlope = Microsoft.ML.Quantized.Sweep.SearchRange.Fixed(1),
                Normalizations = [RecurrentNormalization.Weight],
                Cells = [RecurrentCellKind.Gru],
                HiddenSizes = [8, 16],
                LearningRate = Microsoft.ML.Quantized.Sweep.SearchRange.Fixed(1e-2),
                UseKure = [false],
            })
            .SetTuner(new Microsoft.ML.Quantized.Sweep.GridTuner())
            .SetTrialRunner(runner)
            .SetObjective(Microsoft.ML.Quantized.Sweep.SweepObjective.MaximizeAuc)
            .SetEpochs(3)
            .SetMaxModelToExplore(2)
            .RunAsync();
        Assert.AreEqual(2, result.Trials.Count(t => t.Status == Microsoft.ML.Quantized.Sweep.TrialStatus.Completed), string.Join("\n", result.Trials));
        Assert.IsGreaterThan(0.9, result.Best!.Metric, $"AUC {result.Best.Metric}");
        Assert.IsGreaterThan(0.8, result.Best.Metrics[Microsoft.ML.Quantized.Sweep.TrialReport.Accuracy]);

        // The trainer's column checks apply: a text column is not a token-key vector.
        options.FeatureColumnName = nameof(TextRow.Text);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => _ml.BinaryClassification.Trainers.QuantizedGru(options).CreateTrialRunner(_textTrain, _textTest));
        StringAssert.Contains(e.Message, "Text");
    }

    [TestMethod]
    public void Fitted_classifiers_requantize_after_training_as_ML_NET_transformers()
    {
        var uniform3 = new QuantizerOptions { Kind = QuantizerKind.Uniform, Bits = 3 };
        foreach (var (pipeline, test) in new[] { (_binary, _textTest), (_multiclass, _frameTest) })
        {
            var chain = ((IEnumerable<ITransformer>)pipeline).ToArray();
            var data = chain[..^1].Aggregate(test, (d, t) => t.Transform(d));
            var (original, requantized) = chain[^1] switch
            {
                BinaryPredictionTransformer<SequenceClassifierBinaryModelParameters> b => ((ITransformer)b, (ITransformer)b.WithQuantization(uniform3)),
                MulticlassPredictionTransformer<SequenceClassifierMulticlassModelParameters> m => (m, m.WithQuantization(uniform3)),
                var other => throw new AssertFailedException($"unexpected {other}"),
            };
            try
            {
                var model = ((ISingleFeaturePredictionTransformer<SequenceClassifierModelParameters>)requantized).Model;
                Assert.AreEqual("uniform3", model.GetTrainingClassifier().Options.Recurrent.WeightQuantizer.ToString());
                Assert.AreEqual(QuantizerKind.TernaryWeightNet, ((ISingleFeaturePredictionTransformer<SequenceClassifierModelParameters>)original).Model.GetTrainingClassifier().Options.Recurrent.WeightQuantizer.Kind);
                var scores = ScoresOf(requantized.Transform(data));
                CollectionAssert.AreNotEqual(ScoresOf(original.Transform(data)), scores, "3-bit weights score differently from ternary ones");

                using var stream = new MemoryStream();
                _ml.Model.Save(requantized, data.Schema, stream);
                stream.Position = 0;
                var loaded = new MLContext().Model.Load(stream, out _);
                CollectionAssert.AreEqual(scores, ScoresOf(loaded.Transform(data)));
                DisposeModel(loaded);
            }
            finally
            {
                DisposeModel(requantized);
            }
        }
    }

    private static float[] ScoresOf(IDataView scored) => scored.Schema["Score"].Type is VectorDataViewType
        ? scored.GetColumn<float[]>("Score").SelectMany(v => v).ToArray()
        : scored.GetColumn<float>("Score").ToArray();

    [TestMethod]
    public void Estimators_report_ML_NET_classifier_output_columns()
    {
        var binary = BinaryPipeline(_ml, Options()).GetOutputSchema(ShapeOf(_textTrain.Schema)).ToDictionary(c => c.Name);
        Assert.AreEqual(NumberDataViewType.Single, binary["Score"].ItemType);
        Assert.AreEqual(NumberDataViewType.Single, binary["Probability"].ItemType);
        Assert.AreEqual(BooleanDataViewType.Instance, binary["PredictedLabel"].ItemType);
        var multi = MulticlassPipeline(_ml, Options()).GetOutputSchema(ShapeOf(_frameTrain.Schema)).ToDictionary(c => c.Name);
        Assert.AreEqual(SchemaShape.Column.VectorKind.Vector, multi["Score"].Kind);
        Assert.IsTrue(multi["PredictedLabel"].IsKey);
    }

    // SchemaShape.Create is internal to ML.NET; pipelines call it for users.
    private static SchemaShape ShapeOf(DataViewSchema schema) =>
        (SchemaShape)typeof(SchemaShape).GetMethod("Create", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Static)!.Invoke(null, [schema])!;

    [TestMethod]
    public void Save_and_load_in_a_fresh_MLContext_gives_identical_outputs()
    {
        foreach (var (model, schema, data, column) in new[] { (_binary, _textTrain.Schema, _textTest, "Score"), (_multiclass, _frameTrain.Schema, _frameTest, "Score") })
        {
            using var stream = new MemoryStream();
            _ml.Model.Save(model, schema, stream);
            stream.Position = 0;
            var fresh = new MLContext();
            var loaded = fresh.Model.Load(stream, out var loadedSchema);
            try
            {
                Assert.AreEqual(schema.Count, loadedSchema.Count);
                var before = model.Transform(data);
                var after = loaded.Transform(data);
                if (before.Schema[column].Type is VectorDataViewType)
                {
                    var a = before.GetColumn<float[]>(column).ToArray();
                    var b = after.GetColumn<float[]>(column).ToArray();
                    for (int i = 0; i < a.Length; i++) CollectionAssert.AreEqual(a[i], b[i]);
                    CollectionAssert.AreEqual(before.GetColumn<uint>("PredictedLabel").ToArray(), after.GetColumn<uint>("PredictedLabel").ToArray());
                }
                else
                {
                    CollectionAssert.AreEqual(before.GetColumn<float>(column).ToArray(), after.GetColumn<float>(column).ToArray());
                    CollectionAssert.AreEqual(before.GetColumn<float>("Probability").ToArray(), after.GetColumn<float>("Probability").ToArray());
                }
            }
            finally
            {
                DisposeModel(loaded);
            }
        }
    }

    /// <summary>An ML.NET classifier that quantizes its LSTM cell state saves, loads and scores identically, the quantizer kept.</summary>
    [TestMethod]
    public void A_classifier_with_a_quantized_cell_state_saves_and_loads_with_it()
    {
        var options = Options();
        options.Model.Recurrent.ActivationQuantizer = new QuantizerOptions { Kind = QuantizerKind.Uniform, Bits = 6 };
        options.Model.Recurrent.QuantizedActivations = RecurrentActivations.Gates | RecurrentActivations.CellState;
        var model = BinaryPipeline(_ml, options).Fit(_textTrain);
        using var stream = new MemoryStream();
        _ml.Model.Save(model, _textTrain.Schema, stream);
        stream.Position = 0;
        var loaded = new MLContext().Model.Load(stream, out _);
        try
        {
            var activations = BinaryParameters(loaded).Parts.Packed.Network.Recurrent.Layers[0].Activations;
            CollectionAssert.AreEqual(new[] { false, false, false, false, true, false }, activations.Select(a => a.IsIdentity).ToArray(), "gates and cell state quantized, hidden state float");
            Assert.AreEqual(RecurrentActivations.Gates | RecurrentActivations.CellState, BinaryParameters(loaded).Parts.Packed.Options.Recurrent.QuantizedActivations);
            CollectionAssert.AreEqual(model.Transform(_textTest).GetColumn<float>("Probability").ToArray(), loaded.Transform(_textTest).GetColumn<float>("Probability").ToArray());
        }
        finally
        {
            DisposeModel(model);
            DisposeModel(loaded);
        }
    }

    private static SequenceClassifierBinaryModelParameters BinaryParameters(ITransformer model) =>
        ((ISingleFeaturePredictionTransformer<SequenceClassifierBinaryModelParameters>)((IEnumerable<ITransformer>)model).Last()).Model;

    [TestMethod]
    public void The_saved_classifier_holds_the_packed_weights_and_no_float_training_weights_unless_asked()
    {
        using var stream = new MemoryStream();
        _ml.Model.Save(_binary, _textTrain.Schema, stream);
        var bytes = stream.ToArray();
        var names = ModelZip.EntryNames(bytes);
        Assert.IsFalse(names.Any(n => n.EndsWith("QuantizedSequenceClassifier.bin", StringComparison.Ordinal)), string.Join(", ", names));
        var trained = BinaryParameters(_binary);
        long packed = ModelZip.EntryLength(bytes, "PackedSequenceClassifier.bin");
        Assert.IsTrue(packed >= trained.SizeReport().PackedBytes && packed < trained.SizeReport().PackedBytes + 1024, $"{packed} vs {trained.SizeReport().PackedBytes}");

        var loaded = new MLContext().Model.Load(new MemoryStream(bytes), out _);
        var parameters = BinaryParameters(loaded);
        try
        {
            Assert.IsFalse(parameters.HasTrainingWeights);
            Assert.AreEqual(trained.SizeReport(), parameters.SizeReport());
            var e = Assert.ThrowsExactly<InvalidOperationException>(() => parameters.GetTrainingClassifier());
            StringAssert.Contains(e.Message, "saved without its float training weights");
            var requantize = Assert.ThrowsExactly<InvalidOperationException>(() =>
                ((BinaryPredictionTransformer<SequenceClassifierBinaryModelParameters>)((IEnumerable<ITransformer>)loaded).Last()).WithQuantization(new QuantizerOptions { Kind = QuantizerKind.Uniform, Bits = 3 }));
            StringAssert.Contains(requantize.Message, "KeepTrainingWeights");
            CollectionAssert.AreEqual(_binary.Transform(_textTest).GetColumn<float>("Score").ToArray(), loaded.Transform(_textTest).GetColumn<float>("Score").ToArray());
        }
        finally
        {
            DisposeModel(loaded);
        }

        var keep = Options(epochs: 1);
        keep.KeepTrainingWeights = true;
        var kept = BinaryPipeline(_ml, keep).Fit(_textTrain);
        using var keptStream = new MemoryStream();
        _ml.Model.Save(kept, _textTrain.Schema, keptStream);
        var keptLoaded = new MLContext().Model.Load(new MemoryStream(keptStream.ToArray()), out _);
        try
        {
            Assert.IsTrue(ModelZip.EntryNames(keptStream.ToArray()).Any(n => n.EndsWith("QuantizedSequenceClassifier.bin", StringComparison.Ordinal)));
            Assert.IsTrue(BinaryParameters(keptLoaded).HasTrainingWeights && BinaryParameters(keptLoaded).KeepTrainingWeights);
            Assert.AreEqual(2, BinaryParameters(keptLoaded).GetTrainingClassifier().ClassCount);
        }
        finally
        {
            DisposeModel(kept);
            DisposeModel(keptLoaded);
        }
    }

    [TestMethod]
    public void The_engine_scores_a_trained_classifier_as_the_libtorch_forward_does()
    {
        // Token classifier (binary) and frame classifier (multiclass): the transformers score with the managed engine; the
        // torch classifier they were packed from is the independent reference.
        var binary = BinaryParameters(_binary);
        var scored = _binary.Transform(_textTest).GetColumn<float>("Probability").ToArray();
        var keys = ((IEnumerable<ITransformer>)_binary).Take(2).Aggregate(_textTest, (data, t) => t.Transform(data)).GetColumn<uint[]>("Tokens").ToArray();
        int agree = 0;
        for (int r = 0; r < keys.Length; r++)
        {
            var ids = new List<int>();
            binary.Keys!.AppendRow(new MLContext(), keys[r].Select(k => (ulong)k).ToArray(), ids, "Tokens", r);
            float torch = binary.GetTrainingClassifier().Predict(ids.ToArray()).Probabilities[1];
            Assert.AreEqual(torch, scored[r], 1e-5f, $"row {r}");
            if ((torch > 0.5f) == (scored[r] > 0.5f)) agree++;
        }
        Assert.AreEqual(keys.Length, agree, "every prediction agrees");

        var multiclass = ((ISingleFeaturePredictionTransformer<SequenceClassifierMulticlassModelParameters>)((IEnumerable<ITransformer>)_multiclass).Last()).Model;
        var frames = FrameData.Rows(120, seed: 2).ToArray();
        var scores = _multiclass.Transform(_frameTest).GetColumn<float[]>("Score").ToArray();
        for (int r = 0; r < frames.Length; r++)
        {
            var torch = multiclass.GetTrainingClassifier().Predict(frames[r].Features).Probabilities;
            for (int c = 0; c < torch.Length; c++) Assert.AreEqual(torch[c], scores[r][c], 1e-5f, $"row {r}, class {c}");
        }
    }

    [TestMethod]
    public void Prediction_engines_on_several_threads_give_what_one_gives()
    {
        var rows = TextData.Rows(64, seed: 8).ToArray();
        var single = _ml.Model.CreatePredictionEngine<TextRow, BinaryOutput>(_binary);
        var expected = rows.Select(r => single.Predict(r).Score).ToArray();
        var results = new float[4][];
        Parallel.For(0, 4, new ParallelOptions { MaxDegreeOfParallelism = 4 }, t =>
        {
            var engine = _ml.Model.CreatePredictionEngine<TextRow, BinaryOutput>(_binary);
            results[t] = Enumerable.Range(0, rows.Length).Select(i => engine.Predict(rows[(i + 16 * t) % rows.Length]).Score).ToArray();
        });
        for (int t = 0; t < 4; t++)
            for (int i = 0; i < rows.Length; i++)
                Assert.AreEqual(expected[(i + 16 * t) % rows.Length], results[t][i], $"thread {t}, row {i}");
    }

    [TestMethod]
    public void PredictionEngine_scores_single_rows()
    {
        var engine = _ml.Model.CreatePredictionEngine<TextRow, BinaryOutput>(_binary);
        var positive = engine.Predict(new TextRow { Text = "the movie was good" });
        var negative = engine.Predict(new TextRow { Text = "the movie was bad" });
        Assert.IsTrue(positive.PredictedLabel, $"score {positive.Score}");
        Assert.IsFalse(negative.PredictedLabel, $"score {negative.Score}");
        Assert.IsGreaterThan(positive.Score > 0 ? 0.5f : 0f, positive.Probability);
    }

    public sealed class MulticlassOutput
    {
        public float[] Score { get; set; } = [];
        public uint PredictedLabel { get; set; }
    }

    [TestMethod]
    public void PredictionEngine_scores_single_frame_rows()
    {
        var engine = _ml.Model.CreatePredictionEngine<FrameRow, MulticlassOutput>(_multiclass);
        var rows = FrameData.Rows(40, seed: 9).ToList();
        var batch = _multiclass.Transform(_ml.Data.LoadFromEnumerable(rows)).GetColumn<float[]>("Score").ToArray();
        for (int i = 0; i < rows.Count; i++)
        {
            var one = engine.Predict(rows[i]);
            CollectionAssert.AreEqual(batch[i], one.Score);
            Assert.AreEqual((uint)Array.IndexOf(one.Score, one.Score.Max()) + 1, one.PredictedLabel);
        }
    }

    [TestMethod]
    public void Early_stopping_on_validation_data_ends_training_before_the_epoch_limit()
    {
        var keys = _ml.Transforms.Conversion.MapValueToKey("Label").Fit(_frameTrain);
        // Validation labels are noise: the validation loss stops improving once the model fits the training labels.
        var random = new Random(3);
        string[] names = ["first", "second", "third"];
        var noisy = FrameData.Rows(60, seed: 6).Select(r => { r.Label = names[random.Next(3)]; return r; }).ToList();
        var options = Options(epochs: 30, frameSize: FrameData.FrameSize);
        options.Training.EarlyStoppingPatience = 1;
        options.ValidationData = keys.Transform(_ml.Data.LoadFromEnumerable(noisy));
        var model = _ml.MulticlassClassification.Trainers.QuantizedLstm(options).Fit(keys.Transform(_frameTrain));
        try
        {
            Assert.IsLessThan(30, model.Model.History.Count);
            Assert.IsGreaterThanOrEqualTo(2, model.Model.History.Count);
        }
        finally
        {
            model.Model.Dispose();
        }
    }

    [TestMethod]
    public void Validation_data_without_the_feature_column_is_an_error_saying_to_transform_it_first()
    {
        var keys = _ml.Transforms.Conversion.MapValueToKey("Label").Fit(_frameTrain);
        var options = Options(epochs: 1, frameSize: FrameData.FrameSize);
        options.ValidationData = _ml.Data.LoadFromEnumerable(new[] { new { Text = "raw", Label = "first" } });
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => _ml.MulticlassClassification.Trainers.QuantizedLstm(options).Fit(keys.Transform(_frameTrain)));
        Assert.AreEqual("ValidationData", error.ParamName);
        StringAssert.Contains(error.Message, "The validation data has no feature column 'Features'.");
        StringAssert.Contains(error.Message, "pass it through the same fitted transforms first");
    }

    public sealed class VariableRow
    {
        public float[] Features { get; set; } = [];
        public bool Label { get; set; }
    }

    [TestMethod]
    public void Binary_on_variable_length_float_sequences_and_multiclass_on_tokens_train_and_log_to_the_MLContext()
    {
        var ml = new MLContext(seed: 2);
        var log = new List<string>();
        ml.Log += (_, e) => { lock (log) log.Add(e.Message); };
        // Label: does the sequence (2 to 6 frames of 2) hold a value above 1?
        var random = new Random(4);
        var rows = Enumerable.Range(0, 120).Select(_ =>
        {
            var x = Enumerable.Range(0, 2 * (2 + random.Next(5))).Select(_ => (float)random.NextDouble()).ToArray();
            bool label = random.Next(2) == 1;
            if (label) x[random.Next(x.Length)] = 1.5f;
            return new VariableRow { Features = x, Label = label };
        }).ToList();
        var data = ml.Data.LoadFromEnumerable(rows);
        Assert.IsTrue(data.Schema["Features"].Type is VectorDataViewType { Size: 0 });
        var binary = ml.BinaryClassification.Trainers.QuantizedLstm(Options(epochs: 2, frameSize: 2)).Fit(data);
        try
        {
            Assert.IsTrue(ml.BinaryClassification.Evaluate(binary.Transform(data)).Accuracy > 0);
        }
        finally
        {
            binary.Model.Dispose();
        }
        lock (log)
        {
            Assert.IsTrue(log.Any(m => m.Contains("Epoch 2/2")), string.Join("\n", log.TakeLast(5)));
            Assert.IsTrue(log.Any(m => m.Contains("float frames of 2")));
        }

        var texts = TextData.Rows(90, seed: 5).Select((r, i) => new { r.Text, Label = (i % 3).ToString() }).ToList();
        var options = Options(epochs: 2);
        options.FeatureColumnName = "Tokens";
        var multi = ml.Transforms.Text.TokenizeIntoWords("Tokens", "Text")
            .Append(ml.Transforms.Conversion.MapValueToKey("Tokens"))
            .Append(ml.Transforms.Conversion.MapValueToKey("Label"))
            .Append(ml.MulticlassClassification.Trainers.QuantizedLstm(options))
            .Fit(ml.Data.LoadFromEnumerable(texts));
        try
        {
            var metrics = ml.MulticlassClassification.Evaluate(multi.Transform(ml.Data.LoadFromEnumerable(texts)));
            Assert.IsTrue(double.IsFinite(metrics.LogLoss));
        }
        finally
        {
            DisposeModel(multi);
        }
    }

    [TestMethod]
    public void The_argument_and_options_overloads_train_the_same_classifier_by_default()
    {
        var ml = new MLContext(seed: 4);
        var data = ml.Data.LoadFromEnumerable(TextData.Rows(48, seed: 6));
        var keys = ml.Transforms.Text.TokenizeIntoWords("Tokens", nameof(TextRow.Text)).Append(ml.Transforms.Conversion.MapValueToKey("Tokens")).Fit(data);
        var tokens = keys.Transform(data);
        var options = new SequenceClassifierTrainerOptions { FeatureColumnName = "Tokens" };
        options.Training.Epochs = 1;
        var simple = ml.BinaryClassification.Trainers.QuantizedGru(featureColumnName: "Tokens", epochs: 1).Fit(tokens);
        var full = ml.BinaryClassification.Trainers.QuantizedGru(options).Fit(tokens);
        try
        {
            var recurrent = full.Model.GetTrainingClassifier().Options.Recurrent;
            Assert.AreEqual((128, "twn", RecurrentNormalization.Weight), (recurrent.HiddenSize, recurrent.WeightQuantizer.ToString(), recurrent.Normalization));
            CollectionAssert.AreEqual(simple.Transform(tokens).GetColumn<float>("Score").ToArray(), full.Transform(tokens).GetColumn<float>("Score").ToArray());
        }
        finally
        {
            simple.Model.Dispose();
            full.Model.Dispose();
        }
        options.Training.Seed = 9;
        var e = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.BinaryClassification.Trainers.QuantizedGru(options));
        StringAssert.Contains(e.Message, "Training.Seed (9) is not read on the ML.NET path");
    }

    [TestMethod]
    public void Same_MLContext_seed_gives_the_same_model()
    {
        var data = _ml.Data.LoadFromEnumerable(TextData.Rows(64, seed: 3));
        float[] Scores(int seed)
        {
            var ml = new MLContext(seed: seed);
            var model = BinaryPipeline(ml, Options(epochs: 2)).Fit(data);
            try { return model.Transform(data).GetColumn<float>("Score").ToArray(); }
            finally { DisposeModel(model); }
        }
        CollectionAssert.AreEqual(Scores(11), Scores(11));
        CollectionAssert.AreNotEqual(Scores(11), Scores(12));
    }

    [TestMethod]
    public void Gru_overloads_train_binary_and_multiclass()
    {
        var binary = BinaryPipeline(_ml, Options(epochs: 2), gru: true).Fit(_textTrain);
        var multi = _ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(_ml.MulticlassClassification.Trainers.QuantizedGru(hiddenSize: 16, frameSize: FrameData.FrameSize, epochs: 2)).Fit(_frameTrain);
        try
        {
            Assert.IsTrue(_ml.BinaryClassification.Evaluate(binary.Transform(_textTest)).Accuracy >= 0);
            Assert.IsTrue(_ml.MulticlassClassification.Evaluate(multi.Transform(_frameTest)).MicroAccuracy >= 0);
            var last = ((IEnumerable<ITransformer>)multi).Last() as MulticlassPredictionTransformer<SequenceClassifierMulticlassModelParameters>;
            Assert.IsNotNull(last);
            Assert.AreEqual(RecurrentCellKind.Gru, last.Model.GetTrainingClassifier().Options.Recurrent.Cell);
        }
        finally
        {
            DisposeModel(binary);
            DisposeModel(multi);
        }
    }

    [TestMethod]
    public void Validation_data_is_evaluated_every_epoch()
    {
        var options = Options(epochs: 2, frameSize: FrameData.FrameSize);
        var keys = _ml.Transforms.Conversion.MapValueToKey("Label").Fit(_frameTrain);
        options.ValidationData = keys.Transform(_frameTest);
        var model = _ml.MulticlassClassification.Trainers.QuantizedLstm(options).Fit(keys.Transform(_frameTrain));
        try
        {
            Assert.HasCount(2, model.Model.History);
            Assert.IsTrue(model.Model.History.All(h => !double.IsNaN(h.ValidationLoss)));
        }
        finally
        {
            model.Model.Dispose();
        }
    }

    [TestMethod]
    public void Unseen_words_read_one_unk_token_and_a_row_without_tokens_gets_the_training_class_prior()
    {
        var rows = Outputs(_binary, "the zebra was good", "the giraffe was good", "a zebra film was awful", "   ");
        Assert.AreEqual(rows[0].Score, rows[1].Score, "two unseen words are the same <unk> token");
        Assert.IsTrue(rows[0].PredictedLabel && !rows[2].PredictedLabel, "the sentiment word still decides");
        // No token at all: the class frequencies of the training labels, counted here from the same rows.
        var labels = TextData.Rows(240, seed: 1).Select(r => r.Label).ToArray();
        float positive = (float)labels.Count(l => l) / labels.Length;
        Assert.AreEqual(positive, rows[3].Probability, 1e-6f);
        Assert.AreEqual(MathF.Log(positive) - MathF.Log(1 - positive), rows[3].Score, 1e-5f);
        var parameters = ((ISingleFeaturePredictionTransformer<SequenceClassifierBinaryModelParameters>)((IEnumerable<ITransformer>)_binary).Last()).Model;
        Assert.AreEqual(UnknownTokenHandling.MapToUnknown, parameters.UnknownTokens);

        // Multiclass on tokens, trained with MapValueToKey fitted on the training part only, scored on text with new words.
        var train = TextData.Rows(90, seed: 5).Select((r, i) => new { r.Text, Label = r.Label ? "pos" : "neg" }).ToList();
        var options = Options(epochs: 3);
        options.FeatureColumnName = "Tokens";
        var multi = _ml.Transforms.Text.TokenizeIntoWords("Tokens", "Text")
            .Append(_ml.Transforms.Conversion.MapValueToKey("Tokens"))
            .Append(_ml.Transforms.Conversion.MapValueToKey("Label"))
            .Append(_ml.MulticlassClassification.Trainers.QuantizedLstm(options))
            .Fit(_ml.Data.LoadFromEnumerable(train));
        try
        {
            var scored = multi.Transform(_ml.Data.LoadFromEnumerable(new[]
            {
                new { Text = "the zebra was good", Label = "pos" }, new { Text = "the giraffe was good", Label = "pos" }, new { Text = "", Label = "neg" },
            }));
            var scores = scored.GetColumn<float[]>("Score").ToArray();
            CollectionAssert.AreEqual(scores[0], scores[1]);
            // Classes are in key order of first appearance in the training labels.
            var first = train[0].Label;
            float firstShare = (float)train.Count(r => r.Label == first) / train.Count;
            Assert.AreEqual(firstShare, scores[2][0], 1e-6f);
            Assert.AreEqual(1 - firstShare, scores[2][1], 1e-6f);
        }
        finally
        {
            DisposeModel(multi);
        }
    }

    private static BinaryOutput[] Outputs(ITransformer model, params string[] texts) =>
        _ml.Data.CreateEnumerable<BinaryOutput>(model.Transform(_ml.Data.LoadFromEnumerable(texts.Select(t => new TextRow { Text = t }))), reuseRowObject: false).ToArray();

    [TestMethod]
    public void Bad_inputs_are_errors_naming_the_column_row_and_value()
    {
        // NaN in a float sequence.
        var rows = FrameData.Rows(20, seed: 4).ToList();
        rows[3].Features[5] = float.NaN;
        var e = Assert.Throws<InvalidOperationException>(() => MulticlassPipeline(_ml, Options(frameSize: 3)).Fit(_ml.Data.LoadFromEnumerable(rows)));
        StringAssert.Contains(e.Message, "Column 'Features', row 3, value 5");
        StringAssert.Contains(e.Message, "NaN");

        // Length not a multiple of the frame size.
        e = Assert.Throws<InvalidOperationException>(() => MulticlassPipeline(_ml, Options(frameSize: 4)).Fit(_ml.Data.LoadFromEnumerable(FrameData.Rows(20, seed: 4))));
        StringAssert.Contains(e.Message, "Column 'Features', row 0");
        StringAssert.Contains(e.Message, "frame size 4");

        // Strict mode: an empty token sequence in training, an unknown word (key 0) at scoring.
        var strict = Options(epochs: 1);
        strict.UnknownTokens = UnknownTokenHandling.Strict;
        var texts = TextData.Rows(20, seed: 4).ToList();
        texts[2].Text = "   ";
        e = Assert.Throws<InvalidOperationException>(() => BinaryPipeline(_ml, strict).Fit(_ml.Data.LoadFromEnumerable(texts)));
        StringAssert.Contains(e.Message, "Column 'Tokens', row 2");
        StringAssert.Contains(e.Message, "empty");
        var strictModel = BinaryPipeline(_ml, strict).Fit(_textTrain);
        var unknown = _ml.Data.LoadFromEnumerable(new[] { new TextRow { Text = "the zebra was good" } });
        // (ML.NET's parallel cursors may wrap it: look through the inner exceptions.)
        var scoring = Assert.Throws<Exception>(() => strictModel.Transform(unknown).GetColumn<float>("Score").ToArray());
        StringAssert.Contains(scoring.ToString(), "Column 'Tokens', row 0, token 1: key 0");
        StringAssert.Contains(scoring.ToString(), "UnknownTokens = Strict");
        DisposeModel(strictModel);

        // NaN at scoring (multiclass): the row is named too.
        var scoreRows = FrameData.Rows(3, seed: 5).ToList();
        scoreRows[1].Features[7] = float.NaN;
        scoring = Assert.Throws<Exception>(() => _multiclass.Transform(_ml.Data.LoadFromEnumerable(scoreRows)).GetColumn<float[]>("Score").ToArray());
        StringAssert.Contains(scoring.ToString(), "Column 'Features', row 1, value 7 (step 2): NaN");

        // Missing multiclass label (key 0): a label value the key mapping was not fitted on.
        var keys = _ml.Transforms.Conversion.MapValueToKey("Label").Fit(_frameTrain);
        var labelled = FrameData.Rows(10, seed: 4).ToList();
        labelled[6].Label = "fourth";
        e = Assert.Throws<InvalidOperationException>(() =>
            _ml.MulticlassClassification.Trainers.QuantizedLstm(Options(epochs: 1, frameSize: 3)).Fit(keys.Transform(_ml.Data.LoadFromEnumerable(labelled))));
        StringAssert.Contains(e.Message, "Column 'Label', row 6: key 0");

        // Wrong label type for binary (a key, not a Boolean).
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() =>
            _ml.BinaryClassification.Trainers.QuantizedLstm(Options(frameSize: 3)).Fit(keys.Transform(_frameTrain)));
        StringAssert.Contains(ex.Message, "Label");
        StringAssert.Contains(ex.Message, "Boolean");
    }
}

/// <summary>Sentences whose label is the sentiment word they hold, among filler words.</summary>
internal static class TextData
{
    private static readonly string[] Positive = ["good", "great", "happy", "fine", "nice"];
    private static readonly string[] Negative = ["bad", "awful", "sad", "poor", "ugly"];
    private static readonly string[] Filler = ["the", "a", "movie", "was", "it", "very", "and", "film"];

    public static IEnumerable<QuantizedSequenceTrainerTests.TextRow> Rows(int count, int seed)
    {
        var random = new Random(seed);
        for (int i = 0; i < count; i++)
        {
            bool label = random.Next(2) == 1;
            var words = Enumerable.Range(0, 2 + random.Next(4)).Select(_ => Filler[random.Next(Filler.Length)]).ToList();
            words.Insert(random.Next(words.Count + 1), (label ? Positive : Negative)[random.Next(5)]);
            yield return new() { Text = string.Join(' ', words), Label = label };
        }
    }

    /// <summary>12 rows, then rows with words no training row has (one all unseen) and an empty row.</summary>
    public static List<QuantizedSequenceTrainerTests.TextRow> RowsWithUnseenWordsAndAnEmptyRow() =>
    [
        .. Rows(12, seed: 2),
        new() { Text = "the zzzunseen movie was good", Label = true },
        new() { Text = "qqqnever seen", Label = false },
        new() { Text = "", Label = false },
    ];
}

/// <summary>Vectors of 3 frames of 3 values in [0, 1), one raised to [2.5, 3.5); the class is the frame holding it.</summary>
internal static class FrameData
{
    public const int FrameSize = 3;
    public const int Length = 9;
    private static readonly string[] Names = ["first", "second", "third"];

    public static IEnumerable<QuantizedSequenceTrainerTests.FrameRow> Rows(int count, int seed)
    {
        var random = new Random(seed);
        for (int i = 0; i < count; i++)
        {
            int c = random.Next(3);
            var x = Enumerable.Range(0, Length).Select(_ => (float)random.NextDouble()).ToArray();
            x[c * FrameSize + random.Next(FrameSize)] = 2.5f + (float)random.NextDouble();
            yield return new() { Features = x, Label = Names[c] };
        }
    }
}
