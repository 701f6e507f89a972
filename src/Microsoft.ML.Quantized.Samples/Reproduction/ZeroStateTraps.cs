using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized.Samples.Reproduction;

/// <summary>
/// Zero-state traps of a language model: a state that one first token sends the model into from the zero state and that it
/// does not leave, scoring badly on whatever text follows. Truncated-BPTT training starts from the zero state only at each
/// epoch's first window, so nothing in training penalizes such a state; a carried-state evaluation meets it only when a
/// stream happens to start with a trapping token. These probes score each of those cases directly.
/// </summary>
internal static class ZeroStateTraps
{
    /// <summary>
    /// Every token of the vocabulary as the first input from the zero state, followed by <paramref name="passage"/>: the mean
    /// cross-entropy (nats per token) of the predictions of <paramref name="passage"/>[<paramref name="tailStart"/>..] (all
    /// first tokens at once, one stream each). Index: the first token.
    /// </summary>
    public static double[] TailCrossEntropyByFirstToken(LanguageModelNetwork network, int[] passage, int tailStart)
    {
        if (tailStart < 1 || tailStart >= passage.Length)
            throw new ArgumentOutOfRangeException(nameof(tailStart), tailStart, $"tailStart must be in [1, {passage.Length}) (the passage's length).");
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        int vocabulary = network.VocabularySize;
        // [first, passage...] in every column, the first token differing: inputs are all but the last, targets all but the first.
        var firsts = tensor(Enumerable.Range(0, vocabulary).Select(t => (long)t).ToArray()).reshape(1, vocabulary);
        var body = tensor(passage.Select(t => (long)t).ToArray()).reshape(-1, 1).expand(passage.Length, vocabulary);
        var sequence = cat(new[] { firsts, body }, 0);
        var (logits, state) = network.Forward(sequence.narrow(0, 0, passage.Length), null);
        state.Dispose();
        var losses = nn.functional.cross_entropy(logits.reshape(-1, vocabulary), sequence.narrow(0, 1, passage.Length).reshape(-1), reduction: nn.Reduction.None)
            .reshape(passage.Length, vocabulary);
        // Row k predicts passage[k]; the tail is rows tailStart.. .
        return losses.narrow(0, tailStart, passage.Length - tailStart).mean(new long[] { 0 }).to_type(ScalarType.Float64).data<double>().ToArray();
    }

    /// <summary>
    /// Where a trap sits: <paramref name="first"/> then <paramref name="passage"/>[..<paramref name="split"/>) from the zero
    /// state, then the mean cross-entropy of predicting <paramref name="passage"/>[<paramref name="split"/> + 1..] from that state
    /// with layer <paramref name="zeroedLayer"/>'s h (and an LSTM's c) set to zero (-1: none), so zeroing the layer that holds the trap
    /// lets the model out of it.
    /// </summary>
    public static double ContinuedWithLayerZeroed(LanguageModelNetwork network, int first, int[] passage, int split, int zeroedLayer)
    {
        if (split < 1 || split > passage.Length - 2)
            throw new ArgumentOutOfRangeException(nameof(split), split, $"split must be in [1, {passage.Length - 2}] (two passage tokens at least are left to continue with).");
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var head = tensor(new[] { (long)first }.Concat(passage.Take(split).Select(t => (long)t)).ToArray()).reshape(-1, 1);
        var (_, reached) = network.Forward(head, null);
        var h = reached.H.clone();
        var c = reached.C?.clone();
        reached.Dispose();
        if (zeroedLayer >= 0)
        {
            h[zeroedLayer].zero_();
            c?[zeroedLayer].zero_();
        }
        var rest = passage.Skip(split).Select(t => (long)t).ToArray();
        using var start = new RecurrentState(h, c);
        var (logits, next) = network.Forward(tensor(rest[..^1]).reshape(-1, 1), start);
        next.Dispose();
        return nn.functional.cross_entropy(logits.reshape(-1, network.VocabularySize), tensor(rest[1..])).item<float>();
    }

    /// <summary>
    /// Mean cross-entropy (nats per token) of <paramref name="tokens"/> split into <paramref name="streams"/> parallel streams
    /// scored in windows of <paramref name="window"/> tokens, as validation scores them: the state carried from window to
    /// window, or (<paramref name="resetEachWindow"/>) every window from the zero state. Also each stream's own mean.
    /// </summary>
    public static (double Mean, double[] PerStream) StreamCrossEntropy(LanguageModelNetwork network, int[] tokens, int streams, int window, bool resetEachWindow)
    {
        using var data = new TokenStreamBatcher(tokens, streams, window, CPU);
        using var noGrad = no_grad();
        var sums = new double[streams];
        long steps = 0;
        RecurrentState? state = null;
        try
        {
            for (int i = 0; i < data.WindowCount; i++)
            {
                using var scope = NewDisposeScope();
                var (input, target) = data.Window(i);
                var (logits, next) = network.Forward(input, resetEachWindow ? null : state);
                state?.Dispose();
                state = next.DetachFromDisposeScope();
                var perStream = nn.functional.cross_entropy(logits.reshape(-1, network.VocabularySize), target.reshape(-1), reduction: nn.Reduction.None)
                    .reshape(target.shape[0], streams).sum(new long[] { 0 }).to_type(ScalarType.Float64).data<double>().ToArray();
                for (int s = 0; s < streams; s++) sums[s] += perStream[s];
                steps += target.shape[0];
            }
        }
        finally
        {
            state?.Dispose();
        }
        var means = sums.Select(sum => sum / steps).ToArray();
        return (means.Average(), means);
    }
}
