using System.Globalization;
using System.Text;

namespace Microsoft.ML.Quantized;

/// <summary>
/// How one trained model holds up under post-training quantization (KURE, Shkolnik et al. 2020): the metric at float
/// and at several uniform bit widths, under step sizes a few percent off and rounded to a power of two, and the kurtosis
/// of each weight tensor and of each gate's activations. Built by <see cref="RobustnessReportBuilder"/>.
/// </summary>
/// <param name="MetricName">The metric's name, e.g. <c>perplexity</c>.</param>
/// <param name="LowerIsBetter">True when a lower metric is better (perplexity, loss).</param>
/// <param name="TrainedQuantizer">Registry name of the model's own weight quantizer.</param>
/// <param name="BitWidths">Float first, then the model as trained (when it is not float), then each uniform bit width, ascending.</param>
/// <param name="PerturbationBits">Bit width of the step-size rows.</param>
/// <param name="StepSizes">
/// The exact step first, then each step-size multiplier, then the power-of-two step (at <paramref name="PerturbationBits"/>);
/// empty when neither multipliers nor the power-of-two step were asked for.
/// </param>
/// <param name="Activations">
/// The model with its gates and hidden state quantized after training to each of
/// <see cref="RobustnessReportBuilder.ActivationBitWidths"/> (label <c>activations k-bit</c>; with
/// <see cref="RobustnessReportBuilder.QuantizedActivations"/> set, the activations it names, e.g. <c>cell state k-bit</c>), first with its weights as
/// trained, then with its weights at <paramref name="PerturbationBits"/>; <see cref="RobustnessReportRow.Quantizer"/> and
/// <see cref="RobustnessReportRow.Bits"/> are the weights'. Empty unless activation bit widths were asked for.
/// </param>
/// <param name="PerTensor">
/// For each of <see cref="RobustnessReportBuilder.PerTensorBitWidths"/> (ascending), each weight tensor the uniform model of
/// that width quantizes, alone at that width with the rest float (label: the tensor's name), followed by each of its gate
/// blocks alone (label <c>{tensor}, {gate} gate</c>); <see cref="RobustnessReportRow.WeightError"/> is the quantized part's
/// own relative error. Empty unless per-tensor bit widths were asked for.
/// </param>
/// <param name="Weights">Statistics of each float weight tensor.</param>
/// <param name="Gates">Statistics of each gate's pre- and post-activation on the evaluation data (empty when not recorded).</param>
public sealed record RobustnessReport(
    string MetricName,
    bool LowerIsBetter,
    string TrainedQuantizer,
    IReadOnlyList<RobustnessReportRow> BitWidths,
    int PerturbationBits,
    IReadOnlyList<RobustnessReportRow> StepSizes,
    IReadOnlyList<RobustnessReportRow> Activations,
    IReadOnlyList<RobustnessReportRow> PerTensor,
    IReadOnlyList<WeightStatistics> Weights,
    IReadOnlyList<GateStatistics> Gates)
{
    /// <summary>The float row.</summary>
    public RobustnessReportRow Float => BitWidths.First(r => r.Bits == 32);

    /// <summary>The model as trained: the float row for a float model, else the row of its own weight quantizer.</summary>
    public RobustnessReportRow AsTrained => BitWidths.First(r => r.Quantizer == TrainedQuantizer);

    /// <summary>The uniform row of <paramref name="bits"/> bits, or null when the report has none.</summary>
    public RobustnessReportRow? AtBits(int bits) => BitWidths.FirstOrDefault(r => r.Bits == bits && r.Label.EndsWith("-bit", StringComparison.Ordinal));

    /// <summary>The report as Markdown tables (same as <see cref="ToMarkdown"/>).</summary>
    public override string ToString() => ToMarkdown();

    /// <summary>
    /// The report as Markdown: bit widths, step sizes (with the change against the exact step), activation bit widths and
    /// tensors one at a time (when measured), weight kurtosis and gate kurtosis. <paramref name="headingLevel"/> is the level of the section headings (1-6; default 3).
    /// </summary>
    public string ToMarkdown(int headingLevel = 3)
    {
        if (headingLevel is < 1 or > 6) throw new ArgumentOutOfRangeException(nameof(headingLevel), headingLevel, "headingLevel must be 1-6.");
        var h = new string('#', headingLevel);
        var sb = new StringBuilder();
        sb.AppendLine($"{h} Post-training quantization ({MetricName}, {(LowerIsBetter ? "lower" : "higher")} is better; trained as `{TrainedQuantizer}`)");
        sb.AppendLine();
        sb.AppendLine($"| weights | quantizer | bits | {MetricName} | vs float | weight error |");
        sb.AppendLine("| --- | --- | ---: | ---: | ---: | ---: |");
        double floatMetric = Float.Metric;
        foreach (var r in BitWidths)
            sb.AppendLine($"| {r.Label} | `{r.Quantizer}` | {r.Bits} | {F(r.Metric)} | {Ratio(r.Metric, floatMetric)} | {Percent(r.WeightError)} |");
        if (StepSizes.Count > 0)
        {
            double exact = StepSizes[0].Metric;
            Section(sb, $"{h} Step size at {PerturbationBits} bits", $"| step | quantizer | {MetricName} | vs exact step | weight error |", "| --- | --- | ---: | ---: | ---: |",
                StepSizes, r => $"| {r.Label} | `{r.Quantizer}` | {F(r.Metric)} | {Ratio(r.Metric, exact)} | {Percent(r.WeightError)} |");
        }
        Section(sb, $"{h} Activations quantized after training (uniform, dynamic max step; \"activations\": the model's own, by default the gates and hidden state)",
            $"| activations | weights | weight bits | {MetricName} | vs float |", "| --- | --- | ---: | ---: | ---: |",
            Activations, r => $"| {r.Label} | `{r.Quantizer}` | {r.Bits} | {F(r.Metric)} | {Ratio(r.Metric, floatMetric)} |");
        Section(sb, $"{h} Weight tensors quantized one at a time (the rest float)",
            $"| tensor | bits | {MetricName} | vs float | share of the whole model's cost | weight error |", "| --- | ---: | ---: | ---: | ---: | ---: |",
            PerTensor, r => $"| `{r.Label}` | {r.Bits} | {F(r.Metric)} | {Ratio(r.Metric, floatMetric)} | {Share(ShareOfCost(r))} | {Percent(r.WeightError)} |");
        Section(sb, $"{h} Weight kurtosis (uniform 1.8, Gaussian 3)", "| tensor | elements | std | max abs / std | kurtosis | mean row kurtosis |",
            "| --- | ---: | ---: | ---: | ---: | ---: |", Weights,
            w => $"| `{w.Name}` | {w.Count.ToString(CultureInfo.InvariantCulture)} | {F(w.StdDev)} | {F(w.StdDev > 0 ? w.MaxAbs / w.StdDev : double.NaN)} | {F(w.Kurtosis)} | {F(w.MeanRowKurtosis)} |");
        Section(sb, $"{h} Gate activation kurtosis (evaluation data)", "| layer | gate | values | pre mean | pre std | pre kurtosis | post kurtosis |",
            "| ---: | --- | ---: | ---: | ---: | ---: | ---: |", Gates,
            g => $"| {g.Layer} | {g.Gate} | {g.Count.ToString(CultureInfo.InvariantCulture)} | {F(g.PreActivationMean)} | {F(g.PreActivationStdDev)} | {F(g.PreActivationKurtosis)} | {F(g.PostActivationKurtosis)} |");
        return sb.ToString();
    }

    /// <summary>Appends a blank line, <paramref name="heading"/>, a blank line and a table of <paramref name="items"/>; nothing when there are none.</summary>
    private static void Section<T>(StringBuilder sb, string heading, string header, string alignment, IReadOnlyList<T> items, Func<T, string> row)
    {
        if (items.Count == 0) return;
        sb.AppendLine();
        sb.AppendLine(heading);
        sb.AppendLine();
        sb.AppendLine(header);
        sb.AppendLine(alignment);
        foreach (var item in items) sb.AppendLine(row(item));
    }

    /// <summary>
    /// The share of the uniform model's change against float that <paramref name="row"/> (a <see cref="PerTensor"/> row)
    /// makes at its width: <c>(row - float) / (uniform at that width - float)</c>, e.g. 0.6 when quantizing that tensor alone
    /// costs 60 % of what quantizing every tensor costs. NaN when the report has no uniform row of that width
    /// (<see cref="AtBits"/>) or that row equals float.
    /// </summary>
    public double ShareOfCost(RobustnessReportRow row)
    {
        ArgumentNullException.ThrowIfNull(row);
        double cost = AtBits(row.Bits) is { } whole ? whole.Metric - Float.Metric : double.NaN;
        return cost == 0 || !double.IsFinite(cost) ? double.NaN : (row.Metric - Float.Metric) / cost;
    }

    private static string Share(double share) => double.IsNaN(share) ? "n/a" : (100 * share).ToString("0", CultureInfo.InvariantCulture) + " %";

    private static string F(double value) => double.IsNaN(value) ? "n/a" : value.ToString(Math.Abs(value) >= 1000 ? "F0" : "0.###", CultureInfo.InvariantCulture);

    private static string Ratio(double value, double reference) =>
        reference == 0 || !double.IsFinite(reference) || !double.IsFinite(value) ? "n/a" : (value / reference).ToString("0.000", CultureInfo.InvariantCulture) + "x";

    private static string Percent(double value) => value == 0 ? "0" : (100 * value).ToString("0.00", CultureInfo.InvariantCulture) + "%";
}
