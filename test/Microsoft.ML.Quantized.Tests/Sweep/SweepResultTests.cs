using System.Text.Json;
using Microsoft.ML.Quantized.Sweep;

namespace Microsoft.ML.Quantized.Tests.Sweep;

[TestClass]
public sealed class SweepResultTests
{
    private static TrialResult Trial(int id, long bytes, double metric, TrialStatus status = TrialStatus.Completed, int hidden = 64) =>
        new(id, 0, new QuantizationConfiguration { HiddenSize = hidden + id, WeightQuantizer = QuantizerChoice.TernaryWeightNet }, status,
            new[] { new RungResult(3, metric, bytes, 0.5, new Dictionary<string, double> { ["perplexity"] = metric }, null) },
            status == TrialStatus.Failed ? "boom" : null, 0.5);

    private static readonly TrialResult[] HandMade =
    {
        Trial(0, 100, 10),
        Trial(1, 200, 8),
        Trial(2, 150, 12),                        // dominated by 0 (larger, worse)
        Trial(3, 300, 8),                         // dominated by 1 (larger, equal)
        Trial(4, 50, 20),
        Trial(5, 400, 7),
        Trial(6, 10, 1, TrialStatus.Pruned),      // not trained to the full budget: never on the front
        Trial(7, 20, 2, TrialStatus.Failed),
        Trial(8, 100, 10),                        // same point as 0: the lower id represents it
        Trial(9, 500, double.NaN),                // diverged
        Trial(10, 60, 20),                        // larger than 4, not better
    };

    [TestMethod]
    public void ParetoFrontIsTheNonDominatedSetBySize()
    {
        var result = new SweepResult(HandMade, SweepObjective.MinimizePerplexity, SweepStopReason.TrialBudget, TimeSpan.Zero);
        CollectionAssert.AreEqual(new[] { 4, 0, 1, 5 }, result.ParetoFront.Select(t => t.Id).ToArray());
        Assert.AreEqual(5, result.Best!.Id);

        // Brute force: a completed finite trial is on the front iff no other dominates it (ties kept once, lowest id).
        var candidates = HandMade.Where(t => t.Status == TrialStatus.Completed && double.IsFinite(t.Metric)).ToArray();
        foreach (var t in candidates)
        {
            bool dominated = candidates.Any(o => o.PackedBytes <= t.PackedBytes && o.Metric <= t.Metric
                && (o.PackedBytes < t.PackedBytes || o.Metric < t.Metric || o.Id < t.Id));
            Assert.AreEqual(!dominated, result.ParetoFront.Contains(t), $"trial {t.Id}");
        }
    }

    [TestMethod]
    public void MaximizedMetricsFlipTheFront()
    {
        var result = new SweepResult(HandMade, SweepObjective.MaximizeAccuracy, SweepStopReason.TrialBudget, TimeSpan.Zero);
        // Higher is better: the smallest model (4, metric 20) already beats every larger one.
        CollectionAssert.AreEqual(new[] { 4 }, result.ParetoFront.Select(t => t.Id).ToArray());
        Assert.AreEqual(4, result.Best!.Id);
    }

    [TestMethod]
    public void BestUnderBytes()
    {
        var result = new SweepResult(HandMade, SweepObjective.MinimizePerplexity, SweepStopReason.TrialBudget, TimeSpan.Zero);
        Assert.AreEqual(1, result.BestUnderBytes(250)!.Id);
        Assert.AreEqual(1, result.BestUnderBytes(200)!.Id, "the limit is inclusive");
        Assert.AreEqual(0, result.BestUnderBytes(199)!.Id);
        Assert.AreEqual(4, result.BestUnderBytes(50)!.Id);
        Assert.IsNull(result.BestUnderBytes(49), "pruned and failed trials do not count");
        Assert.AreEqual(5, result.BestUnderBytes(long.MaxValue)!.Id);
    }

    [TestMethod]
    public async Task CsvAndJsonHoldEveryTrial()
    {
        var result = await new QuantizationExperiment(seed: 2)
            .SetTuner(new RandomTuner())
            .SetEpochs(2)
            .SetMaxModelToExplore(12)
            .SetTrialRunner((context, _) => context.Configuration.Cell == RecurrentCellKind.Gru
                ? throw new InvalidOperationException("no GRU, \"quoted\", today")
                : SyntheticObjective.Report(context))
            .RunAsync();
        Assert.AreEqual(12, result.Trials.Count);
        Assert.IsTrue(result.Trials.Any(t => t.Status == TrialStatus.Failed) && result.Trials.Any(t => t.Status == TrialStatus.Completed));

        var csv = result.ToCsv();
        var lines = csv.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.AreEqual(13, lines.Length);
        StringAssert.StartsWith(lines[0], "id,bracket,status,perplexity,packed_bytes,epochs,");
        foreach (var t in result.Trials) StringAssert.Contains(csv, t.Configuration.Key);
        StringAssert.Contains(csv, "\"InvalidOperationException: no GRU, \"\"quoted\"\", today\"");

        using var json = JsonDocument.Parse(result.ToJson());
        var trials = json.RootElement.GetProperty("trials");
        Assert.AreEqual(12, trials.GetArrayLength());
        Assert.AreEqual("perplexity", json.RootElement.GetProperty("objective").GetString());
        Assert.AreEqual(result.Best!.Id, json.RootElement.GetProperty("best").GetInt32());
        var first = QuantizationConfiguration.FromJson(trials[0].GetProperty("configuration").GetRawText());
        Assert.AreEqual(result.Trials[0].Configuration, first);
    }
}
