using Microsoft.ML.Quantized.Sweep;

namespace Microsoft.ML.Quantized.Tests.Sweep;

/// <summary>
/// A made-up, separable "perplexity" over configurations (no training), with one known optimum:
/// GRU, layer norm, no activation quantizer, hidden 128, slope 0.6, learning rate 0.006, KURE on, more bits better.
/// More epochs lower it by 1/epochs for every configuration (so rungs rank like the full budget).
/// </summary>
internal static class SyntheticObjective
{
    public static double Loss(QuantizationConfiguration c)
    {
        double lr = Math.Log10(c.LearningRate) - Math.Log10(0.006);
        double slope = c.ActivationSlope - 0.6;
        double norm = c.Normalization switch
        {
            RecurrentNormalization.Layer => 0,
            RecurrentNormalization.Weight => 0.2,
            RecurrentNormalization.BatchShared => 0.3,
            RecurrentNormalization.BatchPerStep => 0.4,
            _ => 0.7,
        };
        double cell = c.Cell == RecurrentCellKind.Gru ? 0 : 0.25;
        double activation = c.ActivationQuantizer.Kind switch
        {
            QuantizerKind.None => 0,
            QuantizerKind.Uniform => 0.15,
            _ => 0.3,
        };
        double hidden = Math.Abs(Math.Log2(c.HiddenSize / 128.0)) * 0.3;
        double bits = c.WeightQuantizer.Bits >= 32 ? 0 : 0.8 / c.WeightQuantizer.Bits;
        return 3 + lr * lr + 2 * slope * slope + norm + cell + activation + hidden + bits + (c.UseKure ? 0 : 0.05);
    }

    /// <summary>Packed bytes of a made-up 2-layer model: weights at their bit width, plus float biases.</summary>
    public static long Bytes(QuantizationConfiguration c) =>
        8L * c.HiddenSize * c.HiddenSize * Math.Min(32, c.WeightQuantizer.Bits) / 8 + 4L * 8 * c.HiddenSize;

    public static TrialReport Report(TrialContext context) =>
        new(TrialReport.Perplexity, Loss(context.Configuration) + 1.0 / context.Epochs, Bytes(context.Configuration));

    /// <summary>A small space (3 * 1 * 3 * 2 * 2 * 2 * 3 * 2 = 432 grid points with 3 points per range).</summary>
    public static QuantizationSearchSpace SmallSpace() => new()
    {
        WeightQuantizers = [QuantizerChoice.BinaryConnect, QuantizerChoice.TernaryWeightNet, QuantizerChoice.Alternating(2)],
        ActivationQuantizers = [QuantizerChoice.Float],
        ActivationSlope = new SearchRange(0.25, 1.0),
        Normalizations = [RecurrentNormalization.None, RecurrentNormalization.Layer],
        Cells = [RecurrentCellKind.Lstm, RecurrentCellKind.Gru],
        HiddenSizes = [64, 128],
        LearningRate = SearchRange.Log(1e-3, 1e-2),
        UseKure = [false, true],
    };

    public static string TempFile(string name)
    {
        var folder = Path.Combine(Path.GetTempPath(), "mlq-sweep-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        return Path.Combine(folder, name);
    }
}

/// <summary>Records every monitor call.</summary>
internal sealed class RecordingMonitor : ISweepMonitor
{
    public List<TrialContext> Running { get; } = new();
    public List<TrialResult> Completed { get; } = new();
    public List<TrialResult> Failed { get; } = new();

    public void ReportRunningTrial(TrialContext context) => Running.Add(context);

    public void ReportCompletedTrial(TrialResult result) => Completed.Add(result);

    public void ReportFailedTrial(TrialResult result) => Failed.Add(result);
}
