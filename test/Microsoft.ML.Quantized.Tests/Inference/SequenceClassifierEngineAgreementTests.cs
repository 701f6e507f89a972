using static Microsoft.ML.Quantized.Tests.Inference.EngineTestModels;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized.Tests.Inference;

/// <summary>
/// The managed classifier engine (<see cref="SequenceClassifierScorer"/>) against libtorch's evaluation forward of the
/// same perturbed <see cref="SequenceClassifierNetwork"/> followed by softmax, on token and frame input of several
/// lengths, with each pooling (1 step up to past the per-step batch-norm statistics). The probabilities of all sequences are compared at
/// once by <see cref="EngineTestModels.RelativeError"/> (max-norm of the difference over max-norm of libtorch's); at most 1e-4.
/// </summary>
[TestClass]
public sealed class SequenceClassifierEngineAgreementTests
{
    private const double Tolerance = 1e-4;
    private const int Classes = 3;
    private static readonly int[] Lengths = [1, 2, 5, 7];

    [TestMethod]
    [DataRow(RecurrentCellKind.Lstm, SequenceClassifierInputKind.Tokens, RecurrentNormalization.Layer, "twn", "none", false, false, 1, SequencePooling.Mean, LayerNormForm.PerGate)]
    [DataRow(RecurrentCellKind.Gru, SequenceClassifierInputKind.Frames, RecurrentNormalization.BatchPerStep, "uniform4-row", "btq", true, true, 1, SequencePooling.Max, LayerNormForm.PerGate)]
    [DataRow(RecurrentCellKind.Lstm, SequenceClassifierInputKind.Frames, RecurrentNormalization.Weight, "alt2", "uniform3", true, true, 2, SequencePooling.Last, LayerNormForm.PerGate)]
    [DataRow(RecurrentCellKind.Gru, SequenceClassifierInputKind.Tokens, RecurrentNormalization.None, "bwn-row", "none", true, false, 1, SequencePooling.Max, LayerNormForm.PerGate)]
    [DataRow(RecurrentCellKind.Lstm, SequenceClassifierInputKind.Tokens, RecurrentNormalization.BatchShared, "uniform4-lsq", "uniform4-lsq", false, true, 2, SequencePooling.Mean, LayerNormForm.PerGate)]
    [DataRow(RecurrentCellKind.Gru, SequenceClassifierInputKind.Frames, RecurrentNormalization.Layer, "none", "none", false, false, 1, SequencePooling.Last, LayerNormForm.PerGate)]
    [DataRow(RecurrentCellKind.Lstm, SequenceClassifierInputKind.Frames, RecurrentNormalization.Layer, "ttq", "uniform3", true, true, 2, SequencePooling.Mean, LayerNormForm.Joint)]
    [DataRow(RecurrentCellKind.Gru, SequenceClassifierInputKind.Tokens, RecurrentNormalization.Layer, "alt2", "none", false, false, 1, SequencePooling.Max, LayerNormForm.Joint)]
    public void EngineMatchesTorchEvaluation(
        RecurrentCellKind cell, SequenceClassifierInputKind kind, RecurrentNormalization normalization, string weights, string activations,
        bool quantizeEmbeddingAndHead, bool mixedSlopes, int layers, SequencePooling pooling, LayerNormForm form)
    {
        string name = $"{cell}/{kind}/{normalization} {form}/{weights}/act {activations}/{(quantizeEmbeddingAndHead ? "quantized" : "float")} head/{layers} layer(s)/{pooling} pooling";
        var options = new SequenceClassifierOptions
        {
            Recurrent = Recurrent(cell, normalization, weights, activations, mixedSlopes, layers, form),
            ClassCount = Classes,
            Pooling = pooling,
            QuantizeEmbeddingAndHead = quantizeEmbeddingAndHead,
            // The embedding's own quantizer where the head is quantized and the input is tokens (bc differs from any recurrent one above).
            EmbeddingQuantizer = quantizeEmbeddingAndHead && kind == SequenceClassifierInputKind.Tokens ? QuantizerRegistry.Parse("bc") : null,
        };
        using var network = Classifier(kind, options, seed: 11);
        var scorer = new SequenceClassifierScorer(PackedModelEncoder.Encode(network));
        var rng = new Random(5);
        var expected = new List<float>();
        var actual = new List<float>();
        var probabilities = new float[Classes];
        foreach (int length in Lengths)
        {
            if (kind == SequenceClassifierInputKind.Tokens)
            {
                var tokens = Enumerable.Range(0, length).Select(_ => rng.Next(VocabularySize)).ToArray();
                expected.AddRange(TorchProbabilities(network, tensor(tokens.Select(i => (long)i).ToArray(), new long[] { length, 1 }), length));
                scorer.Predict(tokens, probabilities);
            }
            else
            {
                var frames = Enumerable.Range(0, length * FrameSize).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
                expected.AddRange(TorchProbabilities(network, tensor(frames, new long[] { length, 1, FrameSize }), length));
                scorer.Predict(frames, probabilities);
            }
            actual.AddRange(probabilities);
        }
        double error = RelativeError(expected.ToArray(), actual.ToArray(), name);
        Console.WriteLine($"agreement {name}: probabilities {error:E2}");
        Assert.IsTrue(error <= Tolerance, $"{name}: probabilities differ by {error:E2} (relative, max-norm) > {Tolerance:E0}");
        Assert.IsTrue(expected.Max() - expected.Min() > 1e-2, $"{name}: the model should not be indifferent between classes");
    }

    [TestMethod]
    public void WrongInputKindOrShape_IsRejectedWithTheReason()
    {
        var options = new SequenceClassifierOptions { Recurrent = Recurrent(RecurrentCellKind.Gru, RecurrentNormalization.None, "twn"), ClassCount = Classes };
        using var frames = Classifier(SequenceClassifierInputKind.Frames, options, seed: 2);
        var scorer = new SequenceClassifierScorer(PackedModelEncoder.Encode(frames));
        var p = new float[Classes];
        StringAssert.Contains(Assert.ThrowsExactly<InvalidOperationException>(() => scorer.Predict(new[] { 1, 2 }, p)).Message, "float frames");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => scorer.Predict(new float[FrameSize + 1], p)).Message, "whole frames");
        Assert.ThrowsExactly<ArgumentException>(() => scorer.Predict(ReadOnlySpan<float>.Empty, p));
        Assert.ThrowsExactly<ArgumentException>(() => scorer.Predict(new float[FrameSize], new float[Classes + 1]));

        using var tokens = Classifier(SequenceClassifierInputKind.Tokens, options.Clone(), seed: 2);
        var tokenScorer = new SequenceClassifierScorer(PackedModelEncoder.Encode(tokens));
        StringAssert.Contains(Assert.ThrowsExactly<InvalidOperationException>(() => tokenScorer.Predict(new float[FrameSize], p)).Message, "token ids");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => tokenScorer.Predict(new[] { 0, VocabularySize }, p)).Message, "tokens[1]");
    }

    /// <summary>Softmax of libtorch's logits for one sequence (batch of one).</summary>
    private static float[] TorchProbabilities(SequenceClassifierNetwork network, Tensor input, int length)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        network.eval();
        var logits = network.Forward(input, tensor(new long[] { length }));
        return Values(nn.functional.softmax(logits, 1));
    }
}
