namespace Microsoft.ML.Quantized;

/// <summary>How well a sequence classifier labels a data set.</summary>
/// <param name="Accuracy">Fraction of examples whose predicted class is the label.</param>
/// <param name="LogLoss">Mean negative log-probability of the label, nats per example.</param>
/// <param name="AreaUnderRocCurve">Binary models: area under the ROC curve of <c>Probabilities[1]</c> (ties count half); NaN for more than two classes or when one class is absent.</param>
/// <param name="Count">Examples evaluated.</param>
public sealed record SequenceClassifierEvaluation(double Accuracy, double LogLoss, double AreaUnderRocCurve, int Count)
{
    /// <summary>
    /// The evaluation of per-example class log-probabilities (row-major, <paramref name="classes"/> per example) against
    /// <paramref name="labels"/>: the predicted class is the first most probable one.
    /// </summary>
    internal static SequenceClassifierEvaluation Of(ReadOnlySpan<float> logProbabilities, IReadOnlyList<int> labels, int classes)
    {
        int count = labels.Count, correct = 0;
        double logLoss = 0;
        var positiveScores = new float[count];
        for (int i = 0; i < count; i++)
        {
            var row = logProbabilities.Slice(i * classes, classes);
            int best = 0;
            for (int c = 1; c < classes; c++)
                if (row[c] > row[best]) best = c;
            if (best == labels[i]) correct++;
            logLoss -= row[labels[i]];
            if (classes == 2) positiveScores[i] = MathF.Exp(row[1]);
        }
        int n = Math.Max(1, count);
        return new SequenceClassifierEvaluation((double)correct / n, logLoss / n, classes == 2 ? Auc(positiveScores, labels) : double.NaN, count);
    }

    /// <summary>Area under the ROC curve of <paramref name="scores"/> for binary <paramref name="labels"/> (1 = positive); ties count half. NaN when a class is absent.</summary>
    internal static double Auc(IReadOnlyList<float> scores, IReadOnlyList<int> labels)
    {
        ArgumentNullException.ThrowIfNull(scores);
        ArgumentNullException.ThrowIfNull(labels);
        if (scores.Count != labels.Count) throw new ArgumentException($"scores ({scores.Count}) and labels ({labels.Count}) differ in length.", nameof(labels));
        var order = Enumerable.Range(0, scores.Count).OrderBy(i => scores[i]).ToArray();
        // Mann-Whitney U with average ranks for ties.
        double positiveRankSum = 0;
        long positives = 0;
        for (int i = 0; i < order.Length;)
        {
            int j = i;
            while (j + 1 < order.Length && scores[order[j + 1]] == scores[order[i]]) j++;
            double averageRank = (i + j) / 2.0 + 1;
            for (int k = i; k <= j; k++)
            {
                if (labels[order[k]] == 1)
                {
                    positiveRankSum += averageRank;
                    positives++;
                }
            }
            i = j + 1;
        }
        long negatives = order.Length - positives;
        if (positives == 0 || negatives == 0) return double.NaN;
        return (positiveRankSum - positives * (positives + 1) / 2.0) / ((double)positives * negatives);
    }
}
