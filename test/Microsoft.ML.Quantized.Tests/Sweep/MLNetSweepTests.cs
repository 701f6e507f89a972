using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Quantized.Sweep;
using Microsoft.ML.Quantized.Tests.MLNet;

namespace Microsoft.ML.Quantized.Tests.Sweep;

/// <summary>
/// Sweeps inside ML.NET: <c>mlContext.Quantized().CreateExperiment()</c>, runners made by the trainers' and estimators'
/// <c>CreateTrialRunner</c>, and the sweep's best trial as the transformer <c>Fit</c> returns, saved and loaded with
/// <c>mlContext.Model</c>.
/// </summary>
[TestClass]
public sealed class MLNetSweepTests
{
    /// <summary>Two configurations of one size (KURE off and on): the front holds only the best.</summary>
    private static QuantizationSearchSpace TinySpace(RecurrentCellKind cell) => new()
    {
        WeightQuantizers = [QuantizerChoice.TernaryWeightNet],
        ActivationQuantizers = [QuantizerChoice.Float],
        ActivationSlope = SearchRange.Fixed(1),
        Normalizations = [RecurrentNormalization.Weight],
        Cells = [cell],
        HiddenSizes = [8],
        LearningRate = SearchRange.Fixed(1e-2),
        UseKure = [false, true],
    };

    private static byte[] Save(MLContext ml, ITransformer model, DataViewSchema schema)
    {
        using var stream = new MemoryStream();
        ml.Model.Save(model, schema, stream);
        return stream.ToArray();
    }

    private static ITransformer Load(byte[] zip, out MLContext ml)
    {
        ml = new MLContext(seed: 99);
        return ml.Model.Load(new MemoryStream(zip), out _);
    }

    /// <summary>The sweep's checkpoint root: the parent of the trials' folders.</summary>
    private static string RootOf(RecordingMonitor monitor) => Path.GetDirectoryName(monitor.Running[0].CheckpointDirectory)!;

    [TestMethod]
    public async Task A_binary_classifier_sweeps_best_trial_is_Fits_transformer_and_saves_and_loads_through_mlContext_Model()
    {
        var ml = new MLContext(seed: 5);
        var raw = ml.Data.LoadFromEnumerable(TextData.Rows(160, seed: 1));
        var rawValid = ml.Data.LoadFromEnumerable(TextData.Rows(60, seed: 2));
        var featurizer = ml.Transforms.Text.TokenizeIntoWords("Tokens", nameof(QuantizedSequenceTrainerTests.TextRow.Text))
            .Append(ml.Transforms.Conversion.MapValueToKey("Tokens")).Fit(raw);
        var options = QuantizedSequenceTrainerTests.Options(epochs: 1);
        options.FeatureColumnName = "Tokens";
        var trainer = ml.BinaryClassification.Trainers.QuantizedGru(options);
        var tokens = featurizer.Transform(raw);
        TransformerTrialRunner<BinaryPredictionTransformer<SequenceClassifierBinaryModelParameters>> runner = trainer.CreateTrialRunner(tokens, featurizer.Transform(rawValid));

        var monitor = new RecordingMonitor();
        var result = await ml.Quantized().CreateExperiment()
            .SetSearchSpace(TinySpace(RecurrentCellKind.Gru))
            .SetTuner(new GridTuner())
            .SetTrialRunner(runner)
            .SetObjective(SweepObjective.MaximizeAuc)
            .SetEpochs(1)
            .SetMaxModelToExplore(2)
            .SetMonitor(monitor)
            .RunAsync();
        Assert.AreEqual(2, result.Trials.Count(t => t.Status == TrialStatus.Completed), string.Join("\n", result.Trials));
        Assert.IsTrue(monitor.Running.All(c => c.Seed == 5), "the MLContext's seed");
        Assert.IsFalse(Directory.Exists(RootOf(monitor)), "the temporary checkpoint folder is removed");
        var best = result.Best!;
        Assert.IsNull(best.ModelPath);

        var transformer = runner.CreateTransformer(best);
        var fitted = trainer.Fit(tokens);
        try
        {
            // Fit's kind of transformer, with Fit's key map, unknown-token handling, class prior and columns.
            Assert.AreEqual(fitted.GetType(), transformer.GetType());
            CollectionAssert.AreEqual(fitted.Model.Keys!.Keys, transformer.Model.Keys!.Keys);
            Assert.AreEqual(UnknownTokenHandling.MapToUnknown, transformer.Model.UnknownTokens);
            CollectionAssert.AreEqual(fitted.Model.ClassPrior, transformer.Model.ClassPrior);
            Assert.AreEqual("Tokens", transformer.FeatureColumnName);
            Assert.AreEqual(8, transformer.Model.GetTrainingClassifier().Options.Recurrent.HiddenSize);
            Assert.AreEqual(best.PackedBytes, transformer.Model.SizeReport().PackedBytes);

            // It scores the validation rows as the sweep measured them.
            var model = featurizer.Append(transformer);
            var metrics = ml.BinaryClassification.Evaluate(model.Transform(rawValid));
            Assert.AreEqual(best.Metric, metrics.AreaUnderRocCurve, 1e-6);
            Assert.AreEqual(best.Metrics[TrialReport.Accuracy], metrics.Accuracy, 1e-9);

            // Saved into a zip and loaded in a fresh MLContext: the same outputs, unseen words and an empty row included.
            var rows = new[]
            {
                new QuantizedSequenceTrainerTests.TextRow { Text = "the movie was good" },
                new QuantizedSequenceTrainerTests.TextRow { Text = "the zebra was awful indeed" },
                new QuantizedSequenceTrainerTests.TextRow { Text = "" },
            };
            var loaded = Load(Save(ml, model, raw.Schema), out var ml2);
            try
            {
                Assert.IsInstanceOfType<BinaryPredictionTransformer<SequenceClassifierBinaryModelParameters>>(((TransformerChain<ITransformer>)loaded).Last());
                var expected = model.Transform(ml.Data.LoadFromEnumerable(rows));
                var actual = loaded.Transform(ml2.Data.LoadFromEnumerable(rows));
                foreach (var column in new[] { "Score", "Probability" })
                    CollectionAssert.AreEqual(expected.GetColumn<float>(column).ToArray(), actual.GetColumn<float>(column).ToArray(), column);
                CollectionAssert.AreEqual(expected.GetColumn<bool>("PredictedLabel").ToArray(), actual.GetColumn<bool>("PredictedLabel").ToArray());
                var prior = fitted.Model.ClassPrior;
                Assert.AreEqual(prior[1], expected.GetColumn<float>("Probability").Last(), 1e-6, "an empty row scores the class prior");
            }
            finally
            {
                QuantizedSequenceTrainerTests.DisposeModel(loaded);
            }

            // The other trial is not on the front: its model went with the temporary folder.
            var other = result.Trials.Single(t => t.Id != best.Id);
            var e = Assert.ThrowsExactly<ArgumentException>(() => runner.CreateTransformer(other));
            StringAssert.Contains(e.Message, "SetCheckpointDirectory");
        }
        finally
        {
            transformer.Model.Dispose();
            fitted.Model.Dispose();
        }
    }

    [TestMethod]
    public async Task A_multiclass_classifier_sweeps_best_trial_saves_and_loads_with_its_label_keys()
    {
        var ml = new MLContext(seed: 2);
        var keys = ml.Transforms.Conversion.MapValueToKey("Label").Fit(ml.Data.LoadFromEnumerable(FrameData.Rows(150, seed: 1)));
        var raw = ml.Data.LoadFromEnumerable(FrameData.Rows(150, seed: 1));
        var train = keys.Transform(raw);
        var valid = keys.Transform(ml.Data.LoadFromEnumerable(FrameData.Rows(60, seed: 2)));
        var trainer = ml.MulticlassClassification.Trainers.QuantizedLstm(QuantizedSequenceTrainerTests.Options(epochs: 1, frameSize: FrameData.FrameSize));
        var runner = trainer.CreateTrialRunner(train, valid);
        var result = await ml.Quantized().CreateExperiment()
            .SetSearchSpace(TinySpace(RecurrentCellKind.Lstm))
            .SetTuner(new GridTuner())
            .SetTrialRunner(runner)
            .SetObjective(SweepObjective.MaximizeAccuracy)
            .SetEpochs(1)
            .SetMaxModelToExplore(1)
            .RunAsync();
        var transformer = runner.CreateTransformer(result.Best!);
        try
        {
            Assert.IsInstanceOfType<MulticlassPredictionTransformer<SequenceClassifierMulticlassModelParameters>>(transformer);
            var model = keys.Append(transformer);
            var metrics = ml.MulticlassClassification.Evaluate(model.Transform(ml.Data.LoadFromEnumerable(FrameData.Rows(60, seed: 2))));
            Assert.AreEqual(result.Best!.Metric, metrics.MicroAccuracy, 1e-9);

            var loaded = Load(Save(ml, model, raw.Schema), out var ml2);
            try
            {
                var rows = FrameData.Rows(5, seed: 3).ToArray();
                var expected = ml.Transforms.Conversion.MapKeyToValue("Predicted", "PredictedLabel").Fit(model.Transform(ml.Data.LoadFromEnumerable(rows)))
                    .Transform(model.Transform(ml.Data.LoadFromEnumerable(rows)));
                var scored = loaded.Transform(ml2.Data.LoadFromEnumerable(rows));
                var actual = ml2.Transforms.Conversion.MapKeyToValue("Predicted", "PredictedLabel").Fit(scored).Transform(scored);
                var e = expected.GetColumn<float[]>("Score").ToArray();
                var a = actual.GetColumn<float[]>("Score").ToArray();
                for (int i = 0; i < e.Length; i++) CollectionAssert.AreEqual(e[i], a[i]);
                CollectionAssert.AreEqual(expected.GetColumn<string>("Predicted").ToArray(), actual.GetColumn<string>("Predicted").ToArray());
                Assert.IsTrue(actual.GetColumn<string>("Predicted").All(p => p is "first" or "second" or "third"));
            }
            finally
            {
                QuantizedSequenceTrainerTests.DisposeModel(loaded);
            }
        }
        finally
        {
            transformer.Model.Dispose();
        }
    }

    [TestMethod]
    public async Task A_language_model_sweeps_best_trial_is_Fits_transformer_and_the_MLContext_seed_decides_the_metrics()
    {
        var rows = TinyText.Rows(40).ToArray();
        var validRows = TinyText.Rows(12, seed: 8).ToArray();
        var options = TinyText.Options(epochs: 1);
        options.Model.EmbeddingSize = 8;

        async Task<(SweepResult Result, QuantizationExperiment Experiment, RecordingMonitor Monitor, MLContext Ml, IDataView Raw, ITransformer Tokenizer,
            QuantizedRecurrentLanguageModelEstimator Estimator, TransformerTrialRunner<QuantizedRecurrentLanguageModelTransformer> Runner)> Sweep(int seed)
        {
            var ml = new MLContext(seed: seed);
            var raw = ml.Data.LoadFromEnumerable(rows);
            var tokenizer = ml.Transforms.Text.TokenizeIntoWords("Tokens", nameof(QuantizedLanguageModelTransformerTests.TextRow.Text))
                .Append(ml.Transforms.Conversion.MapValueToKey("Tokens")).Fit(raw);
            var estimator = ml.Transforms.QuantizedLstm("Features", "Tokens", options);
            var runner = estimator.CreateTrialRunner(tokenizer.Transform(raw), tokenizer.Transform(ml.Data.LoadFromEnumerable(validRows)));
            var monitor = new RecordingMonitor();
            var experiment = ml.Quantized().CreateExperiment();
            var result = await experiment
                .SetSearchSpace(TinySpace(RecurrentCellKind.Lstm))
                .SetTuner(new GridTuner())
                .SetTrialRunner(runner)
                .SetEpochs(1)
                .SetMaxModelToExplore(2)
                .SetMonitor(monitor)
                .RunAsync();
            return (result, experiment, monitor, ml, raw, tokenizer, estimator, runner);
        }

        var first = await Sweep(3);
        Assert.AreEqual(3, first.Experiment.Seed);
        Assert.IsTrue(first.Monitor.Running.All(c => c.Seed == 3));
        Assert.AreEqual(2, first.Result.Trials.Count(t => t.Status == TrialStatus.Completed), string.Join("\n", first.Result.Trials));
        Assert.IsFalse(Directory.Exists(RootOf(first.Monitor)), "the temporary checkpoint folder is removed");
        var again = await Sweep(3);
        CollectionAssert.AreEqual(first.Result.Trials.Select(t => t.Metric).ToArray(), again.Result.Trials.Select(t => t.Metric).ToArray(), "same MLContext seed, same metrics");
        var other = await Sweep(4);
        CollectionAssert.AreNotEqual(first.Result.Trials.Select(t => t.Metric).ToArray(), other.Result.Trials.Select(t => t.Metric).ToArray(), "another seed");

        var (ml, raw, tokenizer) = (first.Ml, first.Raw, first.Tokenizer);
        var best = first.Result.Best!;
        using var transformer = first.Runner.CreateTransformer(best);
        using var fitted = first.Estimator.Fit(tokenizer.Transform(raw));
        CollectionAssert.AreEqual(fitted.KnownKeys.ToArray(), transformer.KnownKeys.ToArray(), "Fit's key map");
        CollectionAssert.AreEqual(fitted.GetTrainingModel().Vocabulary.Tokens.ToArray(), transformer.GetTrainingModel().Vocabulary.Tokens.ToArray());
        Assert.AreEqual(UnknownTokenHandling.MapToUnknown, transformer.UnknownTokens);
        Assert.AreEqual((fitted.InputColumnName, fitted.OutputColumnName, fitted.PerplexityColumnName), (transformer.InputColumnName, transformer.OutputColumnName, transformer.PerplexityColumnName));
        Assert.AreEqual(8, transformer.HiddenSize);
        Assert.AreEqual(best.PackedBytes, transformer.SizeReport().PackedBytes);

        var model = tokenizer.Append(transformer);
        var scoring = new[]
        {
            new QuantizedLanguageModelTransformerTests.TextRow { Text = "the cat sat on the mat" },
            new QuantizedLanguageModelTransformerTests.TextRow { Text = "the zebra sat on a sofa" },
            new QuantizedLanguageModelTransformerTests.TextRow { Text = "" },
        };
        var loaded = Load(Save(ml, model, raw.Schema), out var ml2);
        try
        {
            var expected = model.Transform(ml.Data.LoadFromEnumerable(scoring));
            var actual = loaded.Transform(ml2.Data.LoadFromEnumerable(scoring));
            var e = expected.GetColumn<float[]>("Features").ToArray();
            var a = actual.GetColumn<float[]>("Features").ToArray();
            for (int i = 0; i < e.Length; i++) CollectionAssert.AreEqual(e[i], a[i], $"row {i}");
            var perplexity = expected.GetColumn<float>("FeaturesPerplexity").ToArray();
            CollectionAssert.AreEqual(perplexity, actual.GetColumn<float>("FeaturesPerplexity").ToArray());
            Assert.IsTrue(float.IsFinite(perplexity[1]), "the unseen words read <unk>");
            Assert.IsTrue(float.IsNaN(perplexity[2]), "an empty row has no perplexity");
        }
        finally
        {
            QuantizedLanguageModelTransformerTests.TransformerOf(loaded).Dispose();
        }
    }

    [TestMethod]
    public async Task MLContext_CancelExecution_stops_the_sweep_and_its_log_gets_the_trials()
    {
        // CancelExecution is internal to ML.NET (AutoML calls it).
        var cancel = typeof(MLContext).GetMethod("CancelExecution", System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Public)!;
        var ml = new MLContext(seed: 1);
        var log = new List<string>();
        ml.Log += (_, e) => { lock (log) log.Add(e.Message); };
        var monitor = new RecordingMonitor();
        bool sawCancellation = false;
        var result = await ml.Quantized().CreateExperiment()
            .SetSearchSpace(SyntheticObjective.SmallSpace())
            .SetTuner(new GridTuner())
            .SetEpochs(1)
            .SetMaxModelToExplore(5)
            .SetMonitor(monitor)
            .SetTrialRunner((context, token) =>
            {
                Directory.CreateDirectory(context.CheckpointDirectory);
                File.WriteAllText(Path.Combine(context.CheckpointDirectory, "checkpoint.bin"), "state");
                if (context.TrialId == 1)
                {
                    cancel.Invoke(ml, null);
                    sawCancellation = token.WaitHandle.WaitOne(TimeSpan.FromSeconds(30));
                    token.ThrowIfCancellationRequested();
                }
                return SyntheticObjective.Report(context);
            })
            .RunAsync();
        Assert.IsTrue(sawCancellation, "the trial's token fired");
        Assert.AreEqual(SweepStopReason.Cancelled, result.StopReason);
        Assert.HasCount(2, result.Trials);
        Assert.AreEqual(TrialStatus.Completed, result.Trials[0].Status);
        Assert.AreEqual(TrialStatus.Stopped, result.Trials[1].Status);
        Assert.IsFalse(Directory.Exists(RootOf(monitor)));
        string[] lines;
        lock (log) lines = log.ToArray();
        Assert.IsTrue(lines.Any(l => l.Contains("Trial #0 Completed")), string.Join("\n", lines.TakeLast(20)));
        Assert.IsTrue(lines.Any(l => l.Contains("Sweep ended (Cancelled)")), string.Join("\n", lines.TakeLast(20)));
    }
}
