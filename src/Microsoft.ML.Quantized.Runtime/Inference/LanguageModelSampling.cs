namespace Microsoft.ML.Quantized;

/// <summary>
/// Text generation with the managed engine: reads a context, then samples one token at a time from the next-token
/// distribution at a temperature (0 = the most likely token), with a seeded <see cref="Random"/>, so the same seed gives
/// the same tokens on every machine.
/// </summary>
internal static class LanguageModelSampling
{
    /// <summary>
    /// Reads <paramref name="context"/> (starting with <c>&lt;eos&gt;</c>) from the zero state and continues it with up to
    /// <paramref name="length"/> sampled ids, stopping early when <paramref name="stopId"/> is sampled (not returned).
    /// </summary>
    public static List<int> Generate(LanguageModelScorer scorer, IReadOnlyList<int> context, int length, double temperature, int seed, int stopId)
    {
        var produced = new List<int>(length);
        if (length == 0) return produced;
        var logits = new float[scorer.Model.VocabularySize];
        scorer.Reset();
        foreach (int id in context) scorer.Step(id, logits);
        var random = new Random(seed);
        var weights = new double[logits.Length];
        while (true)
        {
            int next = Sample(logits, temperature, random, weights);
            if (next == stopId) break;
            produced.Add(next);
            if (produced.Count == length) break;
            scorer.Step(next, logits);
        }
        return produced;
    }

    /// <summary>An id drawn from softmax(<paramref name="logits"/> / temperature); the first largest logit at temperature 0.</summary>
    internal static int Sample(ReadOnlySpan<float> logits, double temperature, Random random, double[] weights)
    {
        int best = 0;
        for (int i = 1; i < logits.Length; i++)
            if (logits[i] > logits[best]) best = i;
        if (temperature == 0) return best;
        double max = logits[best], total = 0;
        for (int i = 0; i < logits.Length; i++) total += weights[i] = Math.Exp((logits[i] - max) / temperature);
        double u = random.NextDouble() * total;
        for (int i = 0; i < logits.Length; i++)
        {
            u -= weights[i];
            if (u < 0) return i;
        }
        return best; // only reached through rounding at the very end of the range
    }
}
