using static Microsoft.ML.Quantized.Tests.Inference.EngineTestModels;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized.Tests.Models;

/// <summary>
/// <see cref="SequenceClassifierOptions.Pooling"/> in the torch classifier: with an identity head (classes = hidden, no bias)
/// the logits are the pooled hidden state itself, so mean and max pooling must give the mean and the element-wise maximum
/// of the last-step network's logits over the sequence's prefixes (each prefix's last state is that step's state); and a
/// padded batch pools each sequence over its own steps only. The managed engine's pooling is checked against this forward
/// in <c>SequenceClassifierEngineAgreementTests</c>.
/// </summary>
[TestClass]
public sealed class SequencePoolingTests
{
    private const int Length = 6;

    [TestMethod]
    [DataRow(RecurrentCellKind.Gru, RecurrentNormalization.Layer)]
    [DataRow(RecurrentCellKind.Lstm, RecurrentNormalization.BatchPerStep)]
    public void MeanAndMax_AreTheMeanAndMaximumOfTheStepStates(RecurrentCellKind cell, RecurrentNormalization normalization)
    {
        using var last = IdentityHeadClassifier(cell, normalization, SequencePooling.Last);
        int[] tokens = [0, 3, 7, 1, 10, 4];
        var steps = new float[Length][];
        for (int t = 1; t <= Length; t++) steps[t - 1] = Logits(last, tokens[..t]);

        var expectedMean = new float[Hidden];
        var expectedMax = Enumerable.Repeat(float.NegativeInfinity, Hidden).ToArray();
        foreach (var state in steps)
            for (int j = 0; j < Hidden; j++)
            {
                expectedMean[j] += state[j] / Length;
                expectedMax[j] = Math.Max(expectedMax[j], state[j]);
            }
        Assert.IsTrue(steps.Select(s => s[0]).Distinct().Count() == Length, "the states should differ between steps, or pooling proves nothing");

        foreach (var (pooling, expected) in new[] { (SequencePooling.Mean, expectedMean), (SequencePooling.Max, expectedMax) })
        {
            using var pooled = IdentityHeadClassifier(cell, normalization, pooling, copyFrom: last);
            var actual = Logits(pooled, tokens);
            for (int j = 0; j < Hidden; j++)
                Assert.AreEqual(expected[j], actual[j], 1e-5, $"{pooling}, unit {j}");
        }
    }

    [TestMethod]
    [DataRow(SequencePooling.Mean)]
    [DataRow(SequencePooling.Max)]
    [DataRow(SequencePooling.Last)]
    public void PaddedBatch_PoolsEachSequenceOverItsOwnSteps(SequencePooling pooling)
    {
        using var network = IdentityHeadClassifier(RecurrentCellKind.Gru, RecurrentNormalization.None, pooling);
        int[][] sequences = [[0, 5, 2, 9, 1, 6], [0, 8], [0, 2, 2, 7]];
        // Column b holds sequence b, then padding ids that differ from anything the sequence holds.
        var batch = new long[Length * sequences.Length];
        for (int t = 0; t < Length; t++)
            for (int b = 0; b < sequences.Length; b++)
                batch[t * sequences.Length + b] = t < sequences[b].Length ? sequences[b][t] : 10 - b;
        float[] together;
        using (var scope = NewDisposeScope())
        using (no_grad())
        {
            var logits = network.Forward(tensor(batch, new long[] { Length, sequences.Length }), tensor(sequences.Select(s => (long)s.Length).ToArray()));
            together = Values(logits);
        }
        for (int b = 0; b < sequences.Length; b++)
        {
            var alone = Logits(network, sequences[b]);
            for (int j = 0; j < Hidden; j++)
                Assert.AreEqual(alone[j], together[b * Hidden + j], 1e-5, $"{pooling}: sequence {b}, unit {j}");
        }
    }

    /// <summary>
    /// A token classifier of <see cref="Hidden"/> classes whose float head is the identity with no bias, so its logits are
    /// the pooled state; with <paramref name="copyFrom"/>, every other weight and statistic copied from that network.
    /// </summary>
    private static SequenceClassifierNetwork IdentityHeadClassifier(
        RecurrentCellKind cell, RecurrentNormalization normalization, SequencePooling pooling, SequenceClassifierNetwork? copyFrom = null)
    {
        var options = new SequenceClassifierOptions
        {
            Recurrent = Recurrent(cell, normalization, "twn"),
            ClassCount = Hidden,
            Pooling = pooling,
        };
        var network = Classifier(SequenceClassifierInputKind.Tokens, options, seed: 3);
        using var noGrad = no_grad();
        if (copyFrom is not null) network.load_state_dict(copyFrom.state_dict());
        var (weight, bias, _) = network.Head;
        using (var identity = eye(Hidden)) weight.copy_(identity);
        bias.zero_();
        return network;
    }

    /// <summary>The evaluation logits of one token sequence (batch of one).</summary>
    private static float[] Logits(SequenceClassifierNetwork network, int[] tokens)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        network.eval();
        var logits = network.Forward(tensor(tokens.Select(i => (long)i).ToArray(), new long[] { tokens.Length, 1 }), tensor(new long[] { tokens.Length }));
        return Values(logits);
    }
}
