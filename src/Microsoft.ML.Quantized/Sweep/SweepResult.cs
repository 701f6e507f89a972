using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Microsoft.ML.Quantized.Sweep;

/// <summary>
/// Every trial of a sweep, the best one, the best under a size limit and the Pareto front of metric against packed
/// size, as objects, CSV or JSON. <see cref="Best"/>, <see cref="BestUnderBytes"/> and <see cref="ParetoFront"/>
/// consider only <see cref="TrialStatus.Completed"/> trials with a finite metric (trained to the full epoch budget,
/// so they compare fairly).
/// </summary>
public sealed class SweepResult
{
    internal SweepResult(IReadOnlyList<TrialResult> trials, SweepObjective objective, SweepStopReason stopReason, TimeSpan elapsed)
    {
        Trials = trials;
        Objective = objective;
        StopReason = stopReason;
        Elapsed = elapsed;
        ParetoFront = ComputeParetoFront(trials, objective);
        Best = Candidates(trials).OrderBy(t => objective.Loss(t.Metric)).ThenBy(t => t.PackedBytes).ThenBy(t => t.Id).FirstOrDefault();
    }

    /// <summary>Every trial that ran (completed, pruned, failed, or stopped by the end of the sweep), by id.</summary>
    public IReadOnlyList<TrialResult> Trials { get; }

    /// <summary>What the sweep optimized.</summary>
    public SweepObjective Objective { get; }

    /// <summary>Why the sweep ended.</summary>
    public SweepStopReason StopReason { get; }

    /// <summary>Wall-clock time of this run (a resumed sweep counts only its own run).</summary>
    public TimeSpan Elapsed { get; }

    /// <summary>The completed trial with the best metric (ties: smaller model, then lower id); null when none completed.</summary>
    public TrialResult? Best { get; }

    /// <summary>
    /// The non-dominated completed trials, by increasing size: each is smaller than every trial with a better metric.
    /// No other completed trial is both at most as large and at least as good (with one of them strictly).
    /// </summary>
    public IReadOnlyList<TrialResult> ParetoFront { get; }

    /// <summary>The best completed trial whose packed model has at most <paramref name="maxBytes"/> bytes; null when none fits.</summary>
    public TrialResult? BestUnderBytes(long maxBytes) =>
        Candidates(Trials).Where(t => t.PackedBytes <= maxBytes)
            .OrderBy(t => Objective.Loss(t.Metric)).ThenBy(t => t.PackedBytes).ThenBy(t => t.Id).FirstOrDefault();

    /// <summary>
    /// One row per trial: id, bracket, status, the objective's metric (named after it), packed bytes, epochs, seconds,
    /// the configuration's values, its key and the error. Invariant culture; fields with commas or quotes are quoted.
    /// </summary>
    public string ToCsv()
    {
        var ci = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.AppendLine(string.Join(",", "id", "bracket", "status", Escape(Objective.Name), "packed_bytes", "epochs", "seconds", "cell", "hidden_size",
            "weight_quantizer", "weight_bits", "activation_quantizer", "activation_slope", "normalization", "learning_rate", "use_kure", "pareto", "key", "error"));
        var front = ParetoFront.Select(t => t.Id).ToHashSet();
        foreach (var t in Trials)
        {
            var c = t.Configuration;
            sb.AppendLine(string.Join(",",
                t.Id.ToString(ci), t.Bracket.ToString(ci), t.Status.ToString(), t.Metric.ToString("R", ci), t.PackedBytes.ToString(ci),
                t.EpochsUsed.ToString(ci), t.Duration.TotalSeconds.ToString("F3", ci), c.Cell.ToString(), c.HiddenSize.ToString(ci),
                c.WeightQuantizer.Name, c.WeightQuantizer.Bits.ToString(ci), c.ActivationQuantizer.Name, c.ActivationSlope.ToString("R", ci),
                c.Normalization.ToString(), c.LearningRate.ToString("R", ci), c.UseKure ? "true" : "false", front.Contains(t.Id) ? "true" : "false",
                Escape(c.Key), Escape(t.Error ?? "")));
        }
        return sb.ToString();
    }

    /// <summary>The whole result as JSON: objective, stop reason, best and Pareto-front ids, and every trial with its rungs.</summary>
    public string ToJson() => JsonSerializer.Serialize(new
    {
        objective = Objective.Name,
        maximize = Objective.HigherIsBetter,
        stopReason = StopReason,
        elapsedSeconds = Elapsed.TotalSeconds,
        best = Best?.Id,
        paretoFront = ParetoFront.Select(t => t.Id).ToArray(),
        trials = Trials.Select(t => new
        {
            id = t.Id,
            bracket = t.Bracket,
            status = t.Status,
            metric = t.Metric,
            packedBytes = t.PackedBytes,
            epochs = t.EpochsUsed,
            seconds = t.Duration.TotalSeconds,
            key = t.Configuration.Key,
            configuration = t.Configuration,
            rungs = t.Rungs,
            error = t.Error,
        }).ToArray(),
    }, SweepJson.Options);

    /// <summary>Trials that count for the best model and the front.</summary>
    private static IEnumerable<TrialResult> Candidates(IEnumerable<TrialResult> trials) =>
        trials.Where(t => t.Status == TrialStatus.Completed && double.IsFinite(t.Metric));

    internal static IReadOnlyList<TrialResult> ComputeParetoFront(IEnumerable<TrialResult> trials, SweepObjective objective)
    {
        var front = new List<TrialResult>();
        double bestLoss = double.PositiveInfinity;
        foreach (var t in Candidates(trials).OrderBy(t => t.PackedBytes).ThenBy(t => objective.Loss(t.Metric)).ThenBy(t => t.Id))
        {
            double loss = objective.Loss(t.Metric);
            if (loss < bestLoss)
            {
                front.Add(t);
                bestLoss = loss;
            }
        }
        return front;
    }

    private static string Escape(string field) =>
        field.IndexOfAny([',', '"', '\n', '\r']) >= 0 ? "\"" + field.Replace("\"", "\"\"") + "\"" : field;
}
