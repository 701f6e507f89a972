using TorchSharp;
using static Microsoft.ML.Quantized.Tests.Inference.EngineTestModels;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized.Tests.Inference;

/// <summary>
/// The managed engine (<see cref="PackedModelEncoder"/> -> <see cref="LanguageModelScorer"/>) against libtorch's evaluation
/// forward (<c>eval()</c>, <c>no_grad</c>) of the same perturbed network, for every cell x normalization x weight quantizer
/// and for slopes, activation quantizers and deeper stacks. Logits are compared over all steps at once by
/// <see cref="EngineTestModels.RelativeError"/> (max-norm of the difference over max-norm of libtorch's logits); the final
/// hidden state, which lies in [-1, 1], by its largest absolute difference; the summed cross-entropy relative to
/// libtorch's. Each must be at most 1e-4. Sequences are longer than the per-step batch-norm statistics.
/// </summary>
[TestClass]
public sealed class LanguageModelEngineAgreementTests
{
    private const double Tolerance = 1e-4;
    private const int Steps = 7;
    private const int Seed = 7;

    private static readonly string[] WeightQuantizers =
    [
        "none", "bc", "sbc", "sbc-real", "bwn", "bwn-row", "bwn-gate", "twn", "twn-gate", "ttq-row", "ttq-theta0.3", "ttq-max", "zttq", "zttq-theta0.1-row", "alt2", "alt3-row",
        "uniform4", "uniform3-row", "uniform4-lsq", "uniform3-lsq-row", "uniform3-pow2", "uniform4-mse",
        "uniform2-asym", "uniform3-asym-row", "uniform2-asym-lsq", "uniform4-fixed", "uniform3-sr-fixed-row",
    ];

    /// <summary>Every cell x normalization (layer normalization in both forms) x weight quantizer, float activations and standard slopes, one layer.</summary>
    public static IEnumerable<object[]> WeightQuantizerMatrix()
    {
        foreach (var cell in Enum.GetValues<RecurrentCellKind>())
            foreach (var normalization in Enum.GetValues<RecurrentNormalization>())
                foreach (var form in normalization == RecurrentNormalization.Layer ? Enum.GetValues<LayerNormForm>() : [LayerNormForm.PerGate])
                    foreach (var weights in WeightQuantizers)
                        yield return [cell, normalization, weights, "none", false, 1, form];
    }

    /// <summary>HitNet slopes (all different), activation quantizers in every evaluation form, and 2-3 layers.</summary>
    public static IEnumerable<object[]> SlopesActivationsAndLayers() =>
    [
        [RecurrentCellKind.Lstm, RecurrentNormalization.Layer, "twn", "btq", true, 2, LayerNormForm.PerGate],
        [RecurrentCellKind.Gru, RecurrentNormalization.BatchPerStep, "uniform4-row", "uniform4", true, 2, LayerNormForm.PerGate],
        [RecurrentCellKind.Lstm, RecurrentNormalization.None, "bwn", "uniform3-lsq", false, 1, LayerNormForm.PerGate],
        [RecurrentCellKind.Gru, RecurrentNormalization.Weight, "alt2", "btq", true, 1, LayerNormForm.PerGate],
        [RecurrentCellKind.Lstm, RecurrentNormalization.BatchShared, "uniform4-lsq", "uniform4-pow2@0.9", false, 1, LayerNormForm.PerGate],
        [RecurrentCellKind.Gru, RecurrentNormalization.None, "none", "uniform2-sr", false, 1, LayerNormForm.PerGate],
        [RecurrentCellKind.Lstm, RecurrentNormalization.Weight, "ttq", "none", true, 3, LayerNormForm.PerGate],
        [RecurrentCellKind.Gru, RecurrentNormalization.Layer, "ttq-theta0.5-gate", "btq", true, 2, LayerNormForm.PerGate],
        [RecurrentCellKind.Gru, RecurrentNormalization.Weight, "ttq-max-theta0.1-row", "none", true, 2, LayerNormForm.PerGate],
        [RecurrentCellKind.Lstm, RecurrentNormalization.None, "none", "none", false, 2, LayerNormForm.PerGate],
        [RecurrentCellKind.Gru, RecurrentNormalization.Layer, "bc", "uniform5-lsq@1.1", true, 2, LayerNormForm.PerGate],
        [RecurrentCellKind.Lstm, RecurrentNormalization.BatchPerStep, "alt2-row", "uniform3", true, 2, LayerNormForm.PerGate],
        [RecurrentCellKind.Lstm, RecurrentNormalization.Layer, "twn", "btq", true, 2, LayerNormForm.Joint],
        [RecurrentCellKind.Gru, RecurrentNormalization.Layer, "bc", "uniform5-lsq@1.1", true, 2, LayerNormForm.Joint],
    ];

    [TestMethod]
    [DynamicData(nameof(WeightQuantizerMatrix))]
    [DynamicData(nameof(SlopesActivationsAndLayers))]
    public void EngineMatchesTorchEvaluation(
        RecurrentCellKind cell, RecurrentNormalization normalization, string weights, string activations, bool mixedSlopes, int layers, LayerNormForm form)
    {
        string name = $"{cell}/{normalization}{(normalization == RecurrentNormalization.Layer ? $" {form}" : "")}/{weights}/act {activations}/{(mixedSlopes ? "mixed slopes" : "slopes 1")}/{layers} layer(s)";
        Agree(name, Recurrent(cell, normalization, weights, activations, mixedSlopes, layers, form));
    }

    /// <summary>Each choice of quantized activations: gates, hidden state and the LSTM cell state on their own and together.</summary>
    [TestMethod]
    [DataRow(RecurrentCellKind.Lstm, RecurrentNormalization.None, "uniform4", RecurrentActivations.CellState, 1)]
    [DataRow(RecurrentCellKind.Lstm, RecurrentNormalization.Layer, "uniform8", RecurrentActivations.Gates | RecurrentActivations.Hidden | RecurrentActivations.CellState, 2)]
    [DataRow(RecurrentCellKind.Lstm, RecurrentNormalization.BatchPerStep, "uniform3-lsq", RecurrentActivations.Gates | RecurrentActivations.CellState, 1)]
    [DataRow(RecurrentCellKind.Lstm, RecurrentNormalization.None, "btq", RecurrentActivations.Gates, 2)]
    [DataRow(RecurrentCellKind.Gru, RecurrentNormalization.Layer, "uniform4", RecurrentActivations.Hidden, 2)]
    [DataRow(RecurrentCellKind.Gru, RecurrentNormalization.None, "btq", RecurrentActivations.Gates, 1)]
    public void EngineMatchesTorchEvaluationForEachChoiceOfQuantizedActivations(
        RecurrentCellKind cell, RecurrentNormalization normalization, string activations, RecurrentActivations quantized, int layers)
    {
        var options = Recurrent(cell, normalization, "twn", activations, mixedSlopes: true, layers);
        options.QuantizedActivations = quantized;
        using var network = LanguageModel(options, Seed);
        var targets = network.Recurrent.Layers[0].ActivationQuantizers.Select(q => !q.IsIdentity).ToArray();
        bool[] expected = cell == RecurrentCellKind.Lstm
            ? [.. Enumerable.Repeat(quantized.HasFlag(RecurrentActivations.Gates), 4), quantized.HasFlag(RecurrentActivations.Hidden), quantized.HasFlag(RecurrentActivations.CellState)]
            : [.. Enumerable.Repeat(quantized.HasFlag(RecurrentActivations.Gates), 3), quantized.HasFlag(RecurrentActivations.Hidden)];
        CollectionAssert.AreEqual(expected, targets, "the identity exactly where an activation is not named");
        Agree($"{cell}/{normalization}/act {activations} on {quantized}/{layers} layer(s)", options);
    }

    /// <summary>The engine's logits, final hidden state and cross-entropy against libtorch's for a perturbed network of <paramref name="options"/>.</summary>
    private static void Agree(string name, QuantizedRecurrentOptions options)
    {
        int layers = options.Layers;
        using var network = LanguageModel(options, Seed);
        var ids = Ids(Seed, Steps);
        var (expectedLogits, expectedHidden) = TorchForward(network, ids, layers);

        var scorer = new LanguageModelScorer(PackedModelEncoder.Encode(network));
        var logits = new float[Steps * VocabularySize];
        for (int t = 0; t < Steps; t++) scorer.Step(ids[t], logits.AsSpan(t * VocabularySize, VocabularySize));
        double logitError = RelativeError(expectedLogits, logits, $"{name}: logits");
        double hiddenError = MaxAbsDifference(expectedHidden, scorer.Hidden);

        var torchHidden = new float[Hidden];
        var (torchSum, torchCount) = LanguageModelScoring.Score(network, CPU, ids.Select(i => (long)i).ToArray(), torchHidden);
        var engineHidden = new float[Hidden];
        var (engineSum, engineCount) = scorer.Score(ids, engineHidden);
        double sumError = Math.Abs(engineSum - torchSum) / Math.Abs(torchSum);

        Console.WriteLine($"agreement {name}: logits {logitError:E2}, hidden {hiddenError:E2}, cross-entropy {sumError:E2}");
        Assert.AreEqual(torchCount, engineCount, $"{name}: scored tokens");
        Assert.IsTrue(logitError <= Tolerance, $"{name}: logits differ by {logitError:E2} (relative, max-norm) > {Tolerance:E0}");
        Assert.IsTrue(hiddenError <= Tolerance, $"{name}: final hidden state differs by {hiddenError:E2} > {Tolerance:E0}");
        Assert.IsTrue(sumError <= Tolerance, $"{name}: cross-entropy {engineSum} vs libtorch {torchSum} ({sumError:E2} relative)");
        CollectionAssert.AreEqual(scorer.Hidden.ToArray(), engineHidden, $"{name}: Score's hidden state is the state after the last step");
    }

    [TestMethod]
    public void ScoreAndSteppingAgree()
    {
        using var network = LanguageModel(Recurrent(RecurrentCellKind.Lstm, RecurrentNormalization.Layer, "twn"), Seed);
        var scorer = new LanguageModelScorer(PackedModelEncoder.Encode(network));
        var ids = Ids(3, Steps);
        var hidden = new float[Hidden];
        var (sum, count) = scorer.Score(ids, hidden);

        scorer.Reset();
        var logits = new float[VocabularySize];
        double stepped = 0;
        for (int t = 0; t < ids.Length; t++)
        {
            scorer.Step(ids[t], logits);
            if (t + 1 < ids.Length) stepped += ScoringKernels.Reference.LogSumExp(logits, new float[VocabularySize]) - logits[ids[t + 1]];
        }
        Assert.AreEqual(Steps - 1, count);
        Assert.AreEqual(Steps, scorer.Position);
        Assert.AreEqual(stepped, sum, 1e-4 * Math.Abs(sum));
        CollectionAssert.AreEqual(hidden, scorer.Hidden.ToArray());
    }

    [TestMethod]
    public void Score_OneToken_ReturnsNoLossAndTheFirstState()
    {
        using var network = LanguageModel(Recurrent(RecurrentCellKind.Gru, RecurrentNormalization.None, "bwn"), Seed);
        var scorer = new LanguageModelScorer(PackedModelEncoder.Encode(network));
        var hidden = new float[Hidden];
        Assert.AreEqual((0.0, 0), scorer.Score([0], hidden));
        var (_, expectedHidden) = TorchForward(network, [0], 1);
        Assert.IsTrue(MaxAbsDifference(expectedHidden, hidden) <= Tolerance);
    }

    [TestMethod]
    public void BadInput_IsRejectedWithTheReason()
    {
        using var network = LanguageModel(Recurrent(RecurrentCellKind.Lstm, RecurrentNormalization.None, "none"), Seed);
        var scorer = new LanguageModelScorer(PackedModelEncoder.Encode(network));
        var hidden = new float[Hidden];
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => scorer.Score([], hidden)).Message, "empty");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => scorer.Score([0, VocabularySize], hidden)).Message, "ids[1]");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => scorer.Score([0, 1], new float[Hidden + 1])).Message, "hidden");
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => scorer.Step(-1, new float[VocabularySize]));
        Assert.ThrowsExactly<ArgumentException>(() => scorer.Step(1, new float[VocabularySize - 1]));
    }

    [TestMethod]
    public void Encode_LeavesNoTensorsAlive()
    {
        using var network = LanguageModel(Recurrent(RecurrentCellKind.Lstm, RecurrentNormalization.BatchPerStep, "uniform4-lsq-row", "uniform4-lsq", true), Seed);
        PackedModelEncoder.Encode(network); // warm-up: lazily created state
        long before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        PackedModelEncoder.Encode(network);
        Assert.AreEqual(before, DisposeScopeManager.Statistics.ThreadTotalLiveCount, "the encoder must dispose every tensor it makes");
    }

    [TestMethod]
    public void Encode_UninitializedLearnedActivationStep_SaysWhatToDo()
    {
        manual_seed(1);
        using var network = new LanguageModelNetwork(VocabularySize, new LanguageModelOptions
        {
            Recurrent = Recurrent(RecurrentCellKind.Gru, RecurrentNormalization.None, "twn", "uniform4-lsq"), EmbeddingSize = Embedding,
        });
        var e = Assert.ThrowsExactly<InvalidOperationException>(() => PackedModelEncoder.Encode(network));
        StringAssert.Contains(e.Message, "never initialized");
    }

    /// <summary>libtorch's evaluation forward over <paramref name="ids"/> as one sequence: logits [time * vocab] and the last layer's final h.</summary>
    internal static (float[] Logits, float[] Hidden) TorchForward(LanguageModelNetwork network, int[] ids, int layers)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        network.eval();
        var tokens = tensor(ids.Select(i => (long)i).ToArray(), new long[] { ids.Length, 1 });
        var (logits, state) = network.Forward(tokens, null);
        return (Values(logits), Values(state.H[layers - 1, 0]));
    }

    private static double MaxAbsDifference(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual)
    {
        Assert.AreEqual(expected.Length, actual.Length);
        double max = 0;
        for (int i = 0; i < expected.Length; i++) max = Math.Max(max, Math.Abs((double)actual[i] - expected[i]));
        return max;
    }
}
