using static Microsoft.ML.Quantized.Tests.Inference.EngineTestModels;

namespace Microsoft.ML.Quantized.Tests.Inference;

/// <summary>One packed model, scorers on two threads at once: the same outputs, bit for bit, as one scorer alone.</summary>
[TestClass]
public sealed class ConcurrentScoringTests
{
    private const int Sequences = 40;

    [TestMethod]
    public void TwoThreadsOnOneLanguageModel_ScoreAsOneScorerAlone()
    {
        using var network = LanguageModel(Recurrent(RecurrentCellKind.Lstm, RecurrentNormalization.BatchPerStep, "twn", "uniform4", true, 2), seed: 8);
        var model = PackedModelEncoder.Encode(network);
        var sequences = Enumerable.Range(0, Sequences).Select(i => Ids(100 + i, 2 + i % 9)).ToArray();

        var alone = new LanguageModelScorer(model);
        var expected = sequences.Select(ids => Score(alone, ids)).ToArray();

        var actual = new (double Sum, float[] Hidden)[Sequences];
        using var start = new Barrier(2);
        var threads = Enumerable.Range(0, 2).Select(part => new Thread(() =>
        {
            var scorer = new LanguageModelScorer(model);
            start.SignalAndWait();
            // Both threads score every sequence, interleaved; the second writes its answers.
            for (int i = 0; i < Sequences; i++)
            {
                int k = part == 0 ? i : Sequences - 1 - i;
                var result = Score(scorer, sequences[k]);
                if (part == 1) actual[k] = result;
                else Assert.AreEqual(expected[k].Sum, result.Sum);
            }
        })).ToArray();
        foreach (var t in threads) t.Start();
        foreach (var t in threads) t.Join();

        for (int i = 0; i < Sequences; i++)
        {
            Assert.AreEqual(expected[i].Sum, actual[i].Sum, $"sequence {i}: cross-entropy");
            CollectionAssert.AreEqual(expected[i].Hidden, actual[i].Hidden, $"sequence {i}: hidden state");
        }
    }

    [TestMethod]
    public void TwoThreadsOnOneClassifier_PredictAsOneScorerAlone()
    {
        var options = new SequenceClassifierOptions { Recurrent = Recurrent(RecurrentCellKind.Gru, RecurrentNormalization.Layer, "alt2", "btq", true, 2), ClassCount = 3 };
        using var network = Classifier(SequenceClassifierInputKind.Frames, options, seed: 8);
        var model = PackedModelEncoder.Encode(network);
        var rng = new Random(1);
        var sequences = Enumerable.Range(0, Sequences).Select(i => Enumerable.Range(0, (1 + i % 6) * FrameSize).Select(_ => (float)rng.NextDouble()).ToArray()).ToArray();

        var alone = new SequenceClassifierScorer(model);
        var expected = sequences.Select(s => Predict(alone, s)).ToArray();
        var actual = new float[2][][];
        Parallel.For(0, 2, new ParallelOptions { MaxDegreeOfParallelism = 2 }, part =>
        {
            var scorer = new SequenceClassifierScorer(model);
            actual[part] = sequences.Select(s => Predict(scorer, s)).ToArray();
        });
        for (int part = 0; part < 2; part++)
            for (int i = 0; i < Sequences; i++)
                CollectionAssert.AreEqual(expected[i], actual[part][i], $"thread {part}, sequence {i}");
    }

    private static (double Sum, float[] Hidden) Score(LanguageModelScorer scorer, int[] ids)
    {
        var hidden = new float[Hidden];
        var (sum, _) = scorer.Score(ids, hidden);
        return (sum, hidden);
    }

    private static float[] Predict(SequenceClassifierScorer scorer, float[] frames)
    {
        var p = new float[3];
        scorer.Predict(frames, p);
        return p;
    }
}
