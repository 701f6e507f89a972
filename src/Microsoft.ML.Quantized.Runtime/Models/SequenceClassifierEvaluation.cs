namespace Microsoft.ML.Quantized;

/// <summary>How well a sequence classifier labels a data set.</summary>
/// <param name="Accuracy">Fraction of examples whose predicted class is the label.</param>
/// <param name="LogLoss">Mean negative log-probability of the label, nats per example.</param>
/// <param name="AreaUnderRocCurve">Binary models: area under the ROC curve of <c>Probabilities[1]</c> (ties count half); NaN for more than two classes or when one class is absent.</param>
/// <param name="Count">Examples evaluated.</param>
public sealed record SequenceClassifierEvaluation(double Accuracy, double LogLoss, double AreaUnderRocCurve, int Count)
{
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
