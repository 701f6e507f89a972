using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized.Tests;

/// <summary><see cref="TrainingOptions.StateResetProbability"/>: training streams whose carried state is zeroed before a window.</summary>
[TestClass]
public sealed class StateResetTests
{
    private const int Streams = 8;
    private static readonly string Train = TinyCorpus.Text(80);
    private static readonly string Valid = TinyCorpus.Text(20, seed: 5);
    private static readonly Vocabulary Chars = Vocabulary.FromCharacters(Train + Valid);

    /// <summary>
    /// Of 4,000 streams at probability 0.25, each is either kept exactly (h and c, every layer) or zeroed (h and c, every
    /// layer), and the share zeroed is 0.25 within 0.03 (4.4 binomial standard deviations at seed 4).
    /// </summary>
    [TestMethod]
    public void EachStreamIsKeptWholeOrZeroedWhole()
    {
        using var scope = NewDisposeScope();
        using var random = TrainingRandom.Use(4);
        const int streams = 4000;
        var h = TrainingRandom.Randn(new long[] { 2, streams, 3 }, ScalarType.Float32, CPU).add_(3);
        var c = TrainingRandom.Randn(new long[] { 2, streams, 3 }, ScalarType.Float32, CPU).add_(3);
        var reset = LanguageModelTask.WithStreamsReset(new RecurrentState(h, c), 0.25);
        float[] Values(Tensor t) => t.permute(1, 0, 2).contiguous().data<float>().ToArray();
        float[] before = Values(h).Concat(Values(c)).ToArray(), after = Values(reset.H).Concat(Values(reset.C!)).ToArray();
        int zeroed = 0;
        for (int s = 0; s < streams; s++)
        {
            // Stream s's 6 values of h, then its 6 values of c.
            var indices = Enumerable.Range(0, 6).Select(i => s * 6 + i).Concat(Enumerable.Range(0, 6).Select(i => streams * 6 + s * 6 + i)).ToArray();
            bool kept = indices.All(i => after[i] == before[i]), cleared = indices.All(i => after[i] == 0);
            Assert.IsTrue(kept ^ cleared, $"stream {s} is kept or zeroed as a whole");
            if (cleared) zeroed++;
        }
        Assert.AreEqual(0.25, zeroed / (double)streams, 0.03);
    }

    /// <summary>
    /// Wired into training: the second window's loss is the one scored by hand from the state the first window left at
    /// probability 0, and the one scored from the zero state when every stream is reset (probability 1 - 1e-9).
    /// </summary>
    [TestMethod]
    [DataRow(0.0)]
    [DataRow(1 - 1e-9)]
    public void TheSecondWindowStartsFromTheCarriedOrTheResetState(double probability)
    {
        using var scope = NewDisposeScope();
        using var random = TrainingRandom.Use(4);
        using var network = new LanguageModelNetwork(Chars.Count, TinyCorpus.Model());
        network.eval();
        using var noGrad = no_grad();
        using var batches = new TokenStreamBatcher(Chars.Encode(Train), Streams, 20, CPU);
        using var task = new LanguageModelTask(network, batches, null) { StateResetProbability = probability };
        task.BeginEpoch(1);
        task.TrainingLoss(0);
        double loss = task.TrainingLoss(1).Loss.item<float>();

        var (first, _) = batches.Window(0);
        var (_, carried) = network.Forward(first, null);
        var (input, target) = batches.Window(1);
        var (logits, _) = network.Forward(input, probability == 0 ? carried : null);
        double expected = nn.functional.cross_entropy(logits.reshape(-1, Chars.Count), target.reshape(-1)).item<float>();
        var (otherLogits, _) = network.Forward(input, probability == 0 ? null : carried);
        double other = nn.functional.cross_entropy(otherLogits.reshape(-1, Chars.Count), target.reshape(-1)).item<float>();
        Assert.AreEqual(expected, loss, 1e-6);
        Assert.IsTrue(Math.Abs(other - loss) > 1e-4, $"the carried and the zero state score apart ({other} vs {loss})");
    }

    /// <summary>
    /// The resets come from the run's seeded random source, reseeded every epoch: a run interrupted in its second epoch and
    /// resumed from its checkpoint ends exactly like an uninterrupted one, and both differ from training without resets.
    /// </summary>
    [TestMethod]
    public void ResetsAreSeededSoAResumedRunEndsLikeAnUninterruptedOne()
    {
        var root = Path.Combine(Path.GetTempPath(), "mlqz-state-reset-" + Guid.NewGuid().ToString("N"));
        try
        {
            var options = TinyCorpus.Model();
            var training = TinyCorpus.Training(2);
            training.StateResetProbability = 0.3;
            using var uninterrupted = QuantizedLanguageModel.Train(Chars, Train, Valid, options, training);
            var carried = training.Clone();
            carried.StateResetProbability = 0;
            using var withoutResets = QuantizedLanguageModel.Train(Chars, Train, Valid, options, carried);

            var resumable = training.Clone();
            resumable.CheckpointDirectory = root;
            resumable.ProgressInterval = 1;
            using var cancel = new CancellationTokenSource();
            Assert.ThrowsExactly<OperationCanceledException>(() => QuantizedLanguageModel.Train(Chars, Train, Valid, options, resumable,
                new SynchronousProgress<TrainingProgress>(p => { if (p.Epoch == 2) cancel.Cancel(); }), cancel.Token));
            using var resumed = QuantizedLanguageModel.Train(Chars, Train, Valid, options, resumable);

            Assert.AreEqual(uninterrupted.Evaluate(Valid).CrossEntropy, resumed.Evaluate(Valid).CrossEntropy, 0.0);
            Assert.AreNotEqual(withoutResets.Evaluate(Valid).CrossEntropy, uninterrupted.Evaluate(Valid).CrossEntropy, 1e-4, "resets change what is trained");
        }
        finally
        {
            if (Directory.Exists(root)) Directory.Delete(root, recursive: true);
        }
    }
}
