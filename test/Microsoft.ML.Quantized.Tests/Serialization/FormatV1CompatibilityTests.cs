// Format-v1 compatibility: ML.NET model zips saved by an earlier build must load and score as that build scored them.
//
// TestData/format-v1/ holds five small zips written by the build of 2026-12-02, commit 9ac33bc (model file format version 1, component
// versions 0x00010001), each a whole pipeline (tokenizer + key mapping + quantized model, or label key mapping +
// classifier), with <name>.expected.json beside it: the input rows and the outputs that build computed:
//   lm-lstm-twn-batchshared                        QuantizedLstm transform, TWN, batch norm shared across steps
//   lm-gru-lsq-btq-slope                           QuantizedGru transform, uniform4-lsq (learned step), btq activations,
//                                                  slopes 0.75, SkipUnknownKeys (two rows hold words never seen in training)
//   binary-gru-twn-batchperstep                    binary QuantizedGru on token keys, TWN, per-step batch norm (5 steps)
//   multiclass-lstm-alt2-weightnorm                3-class QuantizedLstm on token keys, alt2, weight norm
//   multiclass-frames-lstm-uniform3row-layernorm   3-class QuantizedLstm on float frames (4 x 2), uniform3-row, layer norm
// What the fixtures are made from is in FormatV1Fixtures.cs. Do not regenerate them to make these tests pass: a
// difference means the current build reads or scores old model files differently.
//
// The tests check:
//  1. every zip loads with mlContext.Model.Load and scoring the committed rows gives the committed outputs;
//  2. independently of the transformers' scoring code, the outputs follow from the network itself: the language model's
//     Features are the recurrent stack's last output and its perplexity is exp of the mean cross-entropy of the float
//     decoder's logits (log-softmax by hand, in doubles); the classifiers' Score / probabilities are the head's logits
//     (by hand, in doubles) through a softmax, and PredictedLabel is the label value of the largest one;
//  3. the loaded models keep the settings they were saved with, and the files really are format v1;
//  4. a damaged copy (bytes flipped in, or truncation of, the quantized model stream; a truncated zip) is refused with
//     a typed exception whose message names the problem.
//
// Tolerances. Committed outputs: |actual - expected| <= 1e-6 * max(1, |expected|) (absolute 1e-6 for the features and
// probabilities, which are at most 1 in magnitude; relative 1e-6 for perplexities and scores). On the writing machine
// the outputs are bit-identical (the writer checked that the saved and re-loaded model give the same bits); the
// tolerance leaves room for libtorch choosing another summation order on another CPU, and for the managed scoring
// kernel that is planned, without hiding a real change (a changed weight, quantizer, normalization or key map moves
// these outputs by far more). Outputs that pass through a threshold (ternary btq activations; the predicted labels)
// must match exactly. Independent recomputation: 1e-5 relative (float32 network vs the decoder/head and softmax
// recomputed here in doubles).

using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Quantized.Tests.MLNet;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized.Tests.Serialization;

[TestClass]
public sealed class FormatV1CompatibilityTests
{
    private const double CommittedTolerance = 1e-6;
    private const double IndependentTolerance = 1e-5;

    public TestContext TestContext { get; set; } = null!;

    private static string Dir => FormatV1Fixtures.OutputDirectory;

    private static ITransformer Load(string name, MLContext ml)
    {
        var path = Path.Combine(Dir, FormatV1Fixtures.ZipName(name));
        Assert.IsTrue(File.Exists(path), $"{path} is missing: TestData/** must be copied to the test output (see the test .csproj).");
        return ml.Model.Load(path, out _);
    }

    // ---- 1. committed outputs ----

    [TestMethod]
    [DataRow(FormatV1Fixtures.LmLstm)]
    [DataRow(FormatV1Fixtures.LmGru)]
    [DataRow(FormatV1Fixtures.BinaryGru)]
    [DataRow(FormatV1Fixtures.MulticlassLstm)]
    [DataRow(FormatV1Fixtures.MulticlassFrames)]
    public void Committed_model_loads_and_scores_the_committed_rows_as_the_writing_build_did(string name)
    {
        var fixture = FormatV1Fixtures.ReadExpected(Dir, name);
        Assert.AreEqual(name, fixture.Name);
        Assert.AreEqual(FormatV1Fixtures.KindOf(name), fixture.Kind);
        Assert.IsGreaterThanOrEqualTo(6, fixture.Rows.Count, "too few committed rows");
        var ml = new MLContext(seed: 1);
        var model = Load(name, ml);
        try
        {
            var actual = FormatV1Fixtures.Score(model, fixture.Kind, fixture.Rows, ml);
            double worst = 0;
            int exact = 0, values = 0;
            void Close(float expected, float got, string what)
            {
                double diff = Math.Abs((double)got - expected);
                Assert.IsLessThanOrEqualTo(CommittedTolerance * Math.Max(1, Math.Abs((double)expected)), diff,
                    $"{name}: {what} is {FormatV1Fixtures.Format(got)}, the writing build gave {FormatV1Fixtures.Format(expected)}");
                worst = Math.Max(worst, diff);
                values++;
                if (BitConverter.SingleToInt32Bits(expected) == BitConverter.SingleToInt32Bits(got)) exact++;
            }
            for (int i = 0; i < fixture.Rows.Count; i++)
            {
                var (e, a) = (fixture.Rows[i], actual[i]);
                string row = $"row {i} ('{e.Text ?? e.Label}')";
                switch (fixture.Kind)
                {
                    case FixtureKind.LanguageModel:
                        Assert.HasCount(e.Features!.Length, a.Features!, $"{name}: {row} feature width");
                        for (int j = 0; j < e.Features.Length; j++) Close(e.Features[j], a.Features![j], $"{row} Features[{j}]");
                        Close(e.Perplexity!.Value, a.Perplexity!.Value, $"{row} FeaturesPerplexity");
                        if (name == FormatV1Fixtures.LmGru) // ternary activations: the features are exactly -1, 0 or 1
                            CollectionAssert.AreEqual(e.Features, a.Features, $"{name}: {row} ternary Features");
                        break;
                    case FixtureKind.BinaryTokens:
                        Close(e.Score!.Value, a.Score!.Value, $"{row} Score");
                        Close(e.Probability!.Value, a.Probability!.Value, $"{row} Probability");
                        Assert.AreEqual(e.PredictedBinaryLabel, a.PredictedBinaryLabel, $"{name}: {row} PredictedLabel");
                        break;
                    default:
                        Assert.HasCount(e.Scores!.Length, a.Scores!, $"{name}: {row} class count");
                        for (int j = 0; j < e.Scores.Length; j++) Close(e.Scores[j], a.Scores![j], $"{row} Score[{j}]");
                        Assert.AreEqual(e.PredictedLabel, a.PredictedLabel, $"{name}: {row} PredictedLabel");
                        break;
                }
            }
            TestContext.WriteLine($"{name}: {values} values, {exact} bit-identical, largest difference {worst:G3}");
        }
        finally
        {
            QuantizedSequenceTrainerTests.DisposeModel(model);
        }
    }

    // ---- 2. independent recomputation from the network ----

    [TestMethod]
    [DataRow(FormatV1Fixtures.LmLstm)]
    [DataRow(FormatV1Fixtures.LmGru)]
    public void Language_model_features_and_perplexity_follow_from_the_networks_forward_pass(string name)
    {
        var fixture = FormatV1Fixtures.ReadExpected(Dir, name);
        var ml = new MLContext(seed: 1);
        var model = Load(name, ml);
        try
        {
            var lm = Find<QuantizedRecurrentLanguageModelTransformer>(model);
            var options = lm.GetTrainingModel().Options;
            Assert.IsFalse(options.QuantizeEmbeddingAndDecoder, "this check multiplies by the float embedding and decoder itself");
            var network = lm.GetTrainingModel().Network;
            Assert.IsFalse(network.training, "a loaded transformer's network must be in evaluation mode");
            var parameters = Parameters(network);
            var embedding = parameters["embedding"];
            var (decoder, vocabulary, hidden) = Matrix(parameters["decoderWeight"]);
            var decoderBias = Vector(parameters["decoderBias"]);
            Assert.AreEqual(lm.HiddenSize, hidden);

            // Token ids as the transformer documents them: the known keys in order get ids 0..K-1, <eos> gets K.
            var idOfKey = lm.KnownKeys.Select((key, id) => (key, id)).ToDictionary(p => p.key, p => p.id);
            int eos = lm.KnownKeys.Count;
            Assert.AreEqual(vocabulary, eos + 1);

            var output = model.Transform(FormatV1Fixtures.Inputs(ml, fixture.Kind, fixture.Rows));
            var keys = Keys(output, lm.InputColumnName);
            var features = output.GetColumn<float[]>(lm.OutputColumnName).ToArray();
            var perplexity = output.GetColumn<float>(lm.PerplexityColumnName).ToArray();
            int dropped = 0;
            for (int row = 0; row < keys.Length; row++)
            {
                var ids = new List<long> { eos };
                foreach (var key in keys[row])
                {
                    if (idOfKey.TryGetValue(key, out int id)) ids.Add(id);
                    else if (lm.UnknownTokens == UnknownTokenHandling.Skip) dropped++;
                    else Assert.Fail($"{name}: row {row} holds key {key}, unknown to the model, which does not skip unknown keys");
                }
                var states = RecurrentOutputs(network.Recurrent, embedding, ids.ToArray(), frames: null, frameSize: 0);
                // Features: the last layer's output after the last token.
                AssertClose(states[^1], features[row], IndependentTolerance, $"{name}: row {row} Features");
                // Perplexity: exp(mean over t of -log softmax(decoder(h_t))[ids[t + 1]]), all in doubles here.
                double crossEntropy = 0;
                int n = ids.Count - 1;
                for (int t = 0; t < n; t++)
                {
                    var logits = Affine(decoder, decoderBias, states[t]);
                    crossEntropy += LogSumExp(logits) - logits[ids[t + 1]];
                }
                double expected = Math.Exp(crossEntropy / n);
                Assert.AreEqual(expected, perplexity[row], IndependentTolerance * expected, $"{name}: row {row} perplexity");
            }
            if (name == FormatV1Fixtures.LmGru) Assert.AreEqual(2, dropped, "the two rows with unseen words should each lose one word");
        }
        finally
        {
            QuantizedSequenceTrainerTests.DisposeModel(model);
        }
    }

    [TestMethod]
    public void Binary_score_and_probability_follow_from_the_networks_forward_pass()
    {
        var fixture = FormatV1Fixtures.ReadExpected(Dir, FormatV1Fixtures.BinaryGru);
        var ml = new MLContext(seed: 1);
        var model = Load(FormatV1Fixtures.BinaryGru, ml);
        try
        {
            var output = model.Transform(FormatV1Fixtures.Inputs(ml, fixture.Kind, fixture.Rows));
            var logits = ClassifierLogits(Find<ISingleFeaturePredictionTransformer<SequenceClassifierModelParameters>>(model).Model, output);
            var score = output.GetColumn<float>("Score").ToArray();
            var probability = output.GetColumn<float>("Probability").ToArray();
            var predicted = output.GetColumn<bool>("PredictedLabel").ToArray();
            for (int row = 0; row < logits.Length; row++)
            {
                Assert.HasCount(2, logits[row]);
                // Score = log P(true) - log P(false) = logit1 - logit0; Probability = softmax(logits)[1].
                double logOdds = logits[row][1] - logits[row][0];
                var p = Softmax(logits[row]);
                Assert.AreEqual(logOdds, score[row], IndependentTolerance * Math.Max(1, Math.Abs(logOdds)), $"row {row} Score");
                Assert.AreEqual(p[1], probability[row], IndependentTolerance, $"row {row} Probability");
                Assert.AreEqual(logOdds > 0, predicted[row], $"row {row} PredictedLabel");
            }
        }
        finally
        {
            QuantizedSequenceTrainerTests.DisposeModel(model);
        }
    }

    [TestMethod]
    [DataRow(FormatV1Fixtures.MulticlassLstm)]
    [DataRow(FormatV1Fixtures.MulticlassFrames)]
    public void Multiclass_scores_and_predicted_label_follow_from_the_networks_forward_pass(string name)
    {
        var fixture = FormatV1Fixtures.ReadExpected(Dir, name);
        var ml = new MLContext(seed: 1);
        var model = Load(name, ml);
        try
        {
            var output = model.Transform(FormatV1Fixtures.Inputs(ml, fixture.Kind, fixture.Rows));
            var logits = ClassifierLogits(Find<ISingleFeaturePredictionTransformer<SequenceClassifierModelParameters>>(model).Model, output);
            var scores = output.GetColumn<float[]>("Score").ToArray();
            var predicted = output.GetColumn<string>("PredictedLabel").ToArray();
            VBuffer<ReadOnlyMemory<char>> slotNames = default;
            output.Schema["Score"].GetSlotNames(ref slotNames);
            var classNames = slotNames.DenseValues().Select(s => s.ToString()).ToArray();
            Assert.HasCount(3, classNames);
            for (int row = 0; row < logits.Length; row++)
            {
                var p = Softmax(logits[row]);
                AssertClose(p, scores[row], IndependentTolerance, $"{name}: row {row} Score");
                int best = Array.IndexOf(p, p.Max());
                Assert.AreEqual(classNames[best], predicted[row], $"{name}: row {row} PredictedLabel");
            }
        }
        finally
        {
            QuantizedSequenceTrainerTests.DisposeModel(model);
        }
    }

    // ---- 3. settings and format version ----

    [TestMethod]
    public void Committed_models_keep_their_settings_and_are_format_v1()
    {
        var ml = new MLContext(seed: 1);
        foreach (var name in FormatV1Fixtures.Names)
        {
            var bytes = File.ReadAllBytes(Path.Combine(Dir, FormatV1Fixtures.ZipName(name)));
            Assert.IsLessThan(64 * 1024, bytes.Length, $"{name}: fixtures stay small");
            Assert.AreEqual(1, FormatV1Fixtures.ReadExpected(Dir, name).ModelFileFormatVersion);
            var (signature, stream) = FormatV1Fixtures.KindOf(name) switch
            {
                FixtureKind.LanguageModel => ("QRNNLMTF", "QuantizedLanguageModel.bin"),
                FixtureKind.BinaryTokens => ("QSEQBINC", "QuantizedSequenceClassifier.bin"),
                _ => ("QSEQMCLS", "QuantizedSequenceClassifier.bin"),
            };
            bool sawComponent = false, sawStream = false;
            ModelZip.Rewrite(bytes, (entry, data) =>
            {
                int at = data.AsSpan().IndexOf(System.Text.Encoding.ASCII.GetBytes(signature));
                if (at >= 0)
                {
                    sawComponent = true;
                    Assert.AreEqual(0x00010001u, BitConverter.ToUInt32(data, at + 8), $"{name}: component version written");
                }
                if (entry.EndsWith(stream, StringComparison.Ordinal))
                {
                    sawStream = true;
                    Assert.IsTrue(data.AsSpan(0, 8).SequenceEqual("MLQZMODL"u8), $"{name}: model stream signature");
                    Assert.AreEqual(1, BitConverter.ToInt32(data, 8), $"{name}: model file format version");
                }
                return data;
            });
            Assert.IsTrue(sawComponent && sawStream, $"{name}: component {signature} or stream {stream} not found in {string.Join(", ", ModelZip.EntryNames(bytes))}");
        }

        var lstm = Load(FormatV1Fixtures.LmLstm, ml);
        var gru = Load(FormatV1Fixtures.LmGru, ml);
        var binary = Load(FormatV1Fixtures.BinaryGru, ml);
        var multi = Load(FormatV1Fixtures.MulticlassLstm, ml);
        var frames = Load(FormatV1Fixtures.MulticlassFrames, ml);
        try
        {
            var a = Find<QuantizedRecurrentLanguageModelTransformer>(lstm);
            Assert.AreEqual(RecurrentCellKind.Lstm, a.Cell);
            Assert.AreEqual(8, a.HiddenSize);
            Assert.AreEqual(("Tokens", "Features", "FeaturesPerplexity"), (a.InputColumnName, a.OutputColumnName, a.PerplexityColumnName));
            Assert.AreEqual(UnknownTokenHandling.Strict, a.UnknownTokens, "the first format had no <unk>: its strict models stay strict");
            Assert.AreEqual(RecurrentNormalization.BatchShared, a.GetTrainingModel().Options.Recurrent.Normalization);
            Assert.AreEqual("twn", a.GetTrainingModel().Options.Recurrent.WeightQuantizer.ToString());
            Assert.HasCount(6, a.History);

            var b = Find<QuantizedRecurrentLanguageModelTransformer>(gru);
            Assert.AreEqual(RecurrentCellKind.Gru, b.Cell);
            Assert.AreEqual(16, b.HiddenSize);
            Assert.AreEqual(UnknownTokenHandling.Skip, b.UnknownTokens);
            var recurrent = b.GetTrainingModel().Options.Recurrent;
            Assert.AreEqual("uniform4-lsq", recurrent.WeightQuantizer.ToString());
            Assert.AreEqual("btq", recurrent.ActivationQuantizer.ToString());
            Assert.AreEqual(0.75, recurrent.Slopes.InputGate);
            Assert.AreEqual(0.75, recurrent.Slopes.Candidate);
            Assert.IsFalse(b.GetTrainingModel().UsesFusedKernel, "activation quantizers run the cell loop");
            // The learned step came back as a trained parameter (not re-initialized from max |w| / Qp).
            var steps = Parameters(b.GetTrainingModel().Network).Where(p => p.Key.EndsWith(".step", StringComparison.Ordinal)).ToArray();
            Assert.IsNotEmpty(steps, string.Join(", ", Parameters(b.GetTrainingModel().Network).Keys));

            var c = Find<ISingleFeaturePredictionTransformer<SequenceClassifierModelParameters>>(binary).Model;
            Assert.IsInstanceOfType<SequenceClassifierBinaryModelParameters>(c);
            Assert.AreEqual(SequenceClassifierInputKind.Tokens, c.InputKind);
            Assert.AreEqual("Tokens", c.FeatureColumnName);
            Assert.AreEqual(RecurrentNormalization.BatchPerStep, c.GetTrainingClassifier().Options.Recurrent.Normalization);
            Assert.AreEqual(5, c.GetTrainingClassifier().Options.Recurrent.MaxNormalizedSteps);
            Assert.AreEqual(RecurrentCellKind.Gru, c.GetTrainingClassifier().Options.Recurrent.Cell);

            var d = Find<ISingleFeaturePredictionTransformer<SequenceClassifierModelParameters>>(multi).Model;
            Assert.IsInstanceOfType<SequenceClassifierMulticlassModelParameters>(d);
            Assert.AreEqual(3, d.ClassCount);
            Assert.AreEqual("alt2-tensor", d.GetTrainingClassifier().Options.Recurrent.WeightQuantizer.ToString(), "saved before alt's per-row default: keeps per-tensor coefficients");
            Assert.AreEqual(RecurrentNormalization.Weight, d.GetTrainingClassifier().Options.Recurrent.Normalization);
            // The fixtures cover both recurrent paths: this one runs libtorch's fused LSTM, every other one the cell loop.
            Assert.IsTrue(d.GetTrainingClassifier().UsesFusedKernel, "weight-only quantization with weight normalization runs the fused kernel");
            Assert.IsFalse(a.GetTrainingModel().UsesFusedKernel || c.GetTrainingClassifier().UsesFusedKernel, "batch normalization runs the cell loop");

            var e = Find<ISingleFeaturePredictionTransformer<SequenceClassifierModelParameters>>(frames).Model;
            Assert.AreEqual(SequenceClassifierInputKind.Frames, e.InputKind);
            Assert.AreEqual(FormatV1Fixtures.FrameSize, e.FrameSize);
            Assert.AreEqual("uniform3-row", e.GetTrainingClassifier().Options.Recurrent.WeightQuantizer.ToString());
            Assert.AreEqual(RecurrentNormalization.Layer, e.GetTrainingClassifier().Options.Recurrent.Normalization);
            Assert.AreEqual(LayerNormForm.Joint, e.GetTrainingClassifier().Options.Recurrent.LayerNormForm, "saved before the per-gate form: joint, with LN(c)");
            Assert.IsFalse(e.GetTrainingClassifier().UsesFusedKernel, "layer normalization runs the cell loop");
        }
        finally
        {
            foreach (var m in new[] { lstm, gru, binary, multi, frames }) QuantizedSequenceTrainerTests.DisposeModel(m);
        }
    }

    // ---- 4. damaged copies ----
    // Today a damaged quantized stream surfaces as ML.NET's InvalidOperationException (host.Except) whose message names
    // the component and wraps the library's ModelFormatException (checksum mismatch); a damaged zip is ML.NET's FormatException.

    [TestMethod]
    [DataRow(FormatV1Fixtures.LmLstm, "QuantizedLanguageModel.bin", "The quantized language model inside this ML.NET model could not be read")]
    [DataRow(FormatV1Fixtures.BinaryGru, "QuantizedSequenceClassifier.bin", "The quantized sequence classifier inside this ML.NET model could not be read")]
    public void A_damaged_model_stream_is_refused_with_a_checksum_error(string name, string stream, string context)
    {
        var bytes = File.ReadAllBytes(Path.Combine(Dir, FormatV1Fixtures.ZipName(name)));
        Assert.IsTrue(ModelZip.EntryNames(bytes).Any(e => e.EndsWith(stream, StringComparison.Ordinal)));
        var flipped = ModelZip.Rewrite(bytes, (entry, data) =>
        {
            if (entry.EndsWith(stream, StringComparison.Ordinal)) data[data.Length / 2] ^= 0x5A; // inside the weights
            return data;
        });
        var truncated = ModelZip.Rewrite(bytes, (entry, data) => entry.EndsWith(stream, StringComparison.Ordinal) ? data[..(data.Length * 2 / 3)] : data);
        foreach (var (what, zip) in new[] { ("flipped byte", flipped), ("truncated stream", truncated) })
        {
            var e = Assert.ThrowsExactly<InvalidOperationException>(() => QuantizedSequenceTrainerTests.DisposeModel(new MLContext().Model.Load(new MemoryStream(zip), out _)), what);
            var inner = FindInner<ModelFormatException>(e);
            Assert.IsNotNull(inner, $"{what}: no ModelFormatException inside: {QuantizedLanguageModelTransformerTests.Flatten(e)}");
            StringAssert.Contains(inner.Message, "is damaged: its SHA-256 checksum does not match its contents (truncated or modified)", what);
            StringAssert.Contains(QuantizedLanguageModelTransformerTests.Flatten(e), context, what);
        }
    }

    [TestMethod]
    public void A_truncated_zip_is_refused_as_not_a_zip_archive()
    {
        var bytes = File.ReadAllBytes(Path.Combine(Dir, FormatV1Fixtures.ZipName(FormatV1Fixtures.MulticlassLstm)));
        foreach (int length in new[] { bytes.Length / 2, bytes.Length - 10 })
        {
            // ML.NET's own check, before any quantized component is read: a FormatException over the zip reader's error.
            var e = Assert.ThrowsExactly<FormatException>(() => QuantizedSequenceTrainerTests.DisposeModel(new MLContext().Model.Load(new MemoryStream(bytes[..length]), out _)), $"cut at {length}");
            StringAssert.Contains(e.Message, "Failed to open a zip archive", $"cut at {length}");
            Assert.IsInstanceOfType<InvalidDataException>(e.InnerException, $"cut at {length}");
        }
    }

    // ---- helpers ----

    private static T Find<T>(ITransformer model) where T : class
    {
        if (model is T t) return t;
        if (model is IEnumerable<ITransformer> chain)
            foreach (var part in chain.Reverse())
                if (FindOrNull<T>(part) is T found) return found;
        throw new AssertFailedException($"No {typeof(T).Name} in the loaded model ({model.GetType().Name}).");
    }

    private static T? FindOrNull<T>(ITransformer model) where T : class =>
        model as T ?? (model is IEnumerable<ITransformer> chain ? chain.Reverse().Select(FindOrNull<T>).FirstOrDefault(x => x is not null) : null);

    private static T? FindInner<T>(Exception e) where T : Exception
    {
        for (var x = e; x is not null; x = x.InnerException)
            if (x is T t) return t;
        return null;
    }

    private static Dictionary<string, Tensor> Parameters(nn.Module module) =>
        module.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter);

    /// <summary>The rows of a key-vector column, as raw keys (0 = missing).</summary>
    private static uint[][] Keys(IDataView data, string column)
    {
        var result = new List<uint[]>();
        using var cursor = data.GetRowCursor([data.Schema[column]]);
        var getter = cursor.GetGetter<VBuffer<uint>>(data.Schema[column]);
        VBuffer<uint> keys = default;
        while (cursor.MoveNext())
        {
            getter(ref keys);
            result.Add(keys.DenseValues().ToArray());
        }
        return result.ToArray();
    }

    /// <summary>The classifier's head logits of every row of <paramref name="scored"/>, computed here from the network's parts.</summary>
    private static double[][] ClassifierLogits(SequenceClassifierModelParameters parameters, IDataView scored)
    {
        var classifier = parameters.GetTrainingClassifier();
        Assert.IsFalse(classifier.Options.QuantizeEmbeddingAndHead, "this check multiplies by the float embedding and head itself");
        var network = classifier.Network;
        Assert.IsFalse(network.training, "a loaded classifier's network must be in evaluation mode");
        var all = Parameters(network);
        var (head, classes, _) = Matrix(all["headWeight"]);
        var headBias = Vector(all["headBias"]);
        Assert.AreEqual(classifier.ClassCount, classes);
        var rows = new List<double[]>();
        if (parameters.InputKind == SequenceClassifierInputKind.Tokens)
        {
            // Key k is token id k - 1 (documented on SequenceClassifierFeatureColumn).
            foreach (var keys in Keys(scored, parameters.FeatureColumnName))
            {
                var states = RecurrentOutputs(network.Recurrent, all["embedding"], keys.Select(k => (long)k - 1).ToArray(), null, 0);
                rows.Add(Affine(head, headBias, states[^1]));
            }
        }
        else
        {
            foreach (var frames in scored.GetColumn<float[]>(parameters.FeatureColumnName))
            {
                var states = RecurrentOutputs(network.Recurrent, null, null, frames, parameters.FrameSize);
                rows.Add(Affine(head, headBias, states[^1]));
            }
        }
        return rows.ToArray();
    }

    /// <summary>
    /// Runs the recurrent stack alone (evaluation mode, no gradients) on one sequence: token ids looked up in the float
    /// embedding table, or float frames. Returns the last layer's output at every step.
    /// </summary>
    private static double[][] RecurrentOutputs(QuantizedRecurrentStack recurrent, Tensor? embedding, long[]? ids, float[]? frames, int frameSize)
    {
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        Tensor input = ids is not null
            ? embedding!.index_select(0, torch.tensor(ids)).unsqueeze(1)
            : torch.tensor(frames!, new long[] { frames!.Length / frameSize, 1, frameSize });
        var (output, _) = recurrent.Forward(input, null);
        var (values, steps, width) = Matrix(output.squeeze(1));
        return Enumerable.Range(0, steps).Select(t => values.AsSpan(t * width, width).ToArray()).ToArray();
    }

    private static (double[] Values, int Rows, int Columns) Matrix(Tensor t)
    {
        Assert.AreEqual(2L, t.dim());
        using var d = t.detach().to(torch.CPU).to(torch.float64).contiguous();
        return (d.data<double>().ToArray(), (int)t.shape[0], (int)t.shape[1]);
    }

    private static double[] Vector(Tensor t)
    {
        using var d = t.detach().to(torch.CPU).to(torch.float64).contiguous();
        return d.data<double>().ToArray();
    }

    /// <summary>W x + b with W [rows, x.Length] row-major, in doubles.</summary>
    private static double[] Affine(double[] weight, double[] bias, double[] x)
    {
        var y = new double[bias.Length];
        for (int r = 0; r < y.Length; r++)
        {
            double s = bias[r];
            for (int j = 0; j < x.Length; j++) s += weight[r * x.Length + j] * x[j];
            y[r] = s;
        }
        return y;
    }

    private static double LogSumExp(double[] v)
    {
        double max = v.Max(), s = 0;
        foreach (var x in v) s += Math.Exp(x - max);
        return max + Math.Log(s);
    }

    private static double[] Softmax(double[] v)
    {
        double lse = LogSumExp(v);
        return v.Select(x => Math.Exp(x - lse)).ToArray();
    }

    private static void AssertClose(double[] expected, float[] actual, double tolerance, string what)
    {
        Assert.HasCount(expected.Length, actual, what);
        for (int i = 0; i < expected.Length; i++)
            Assert.AreEqual(expected[i], actual[i], tolerance * Math.Max(1, Math.Abs(expected[i])), $"{what}[{i}]");
    }
}
