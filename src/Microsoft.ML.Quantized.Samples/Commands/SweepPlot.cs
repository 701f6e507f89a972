using System.Globalization;
using Microsoft.ML.Quantized.Sweep;

namespace Microsoft.ML.Quantized.Samples.Commands;

/// <summary>Metric against packed size (log scale) for every trained trial, with the Pareto front drawn as a line.</summary>
internal static class SweepPlot
{
    public static void Write(SweepResult result, FileInfo path, string title)
    {
        var plot = new ScottPlot.Plot();
        void Points(IEnumerable<TrialResult> trials, string legend, ScottPlot.Color color, float size)
        {
            var list = trials.Where(t => double.IsFinite(t.Metric) && t.PackedBytes > 0).ToArray();
            if (list.Length == 0) return;
            var points = plot.Add.ScatterPoints(list.Select(t => Math.Log10(t.PackedBytes / 1000.0)).ToArray(), list.Select(t => t.Metric).ToArray());
            points.LegendText = legend;
            points.Color = color;
            points.MarkerSize = size;
        }
        Points(result.Trials.Where(t => t.Status == TrialStatus.Pruned), "pruned (fewer epochs)", ScottPlot.Colors.LightGray, 6);
        Points(result.Trials.Where(t => t.Status == TrialStatus.Completed), "completed", ScottPlot.Colors.SteelBlue, 8);

        var front = result.ParetoFront;
        var line = plot.Add.Scatter(front.Select(t => Math.Log10(t.PackedBytes / 1000.0)).ToArray(), front.Select(t => t.Metric).ToArray());
        line.LegendText = "Pareto front";
        line.Color = ScottPlot.Colors.OrangeRed;
        line.LineWidth = 2;
        line.MarkerSize = 9;
        foreach (var t in front)
        {
            var c = t.Configuration;
            var label = plot.Add.Text($"{c.WeightQuantizer.Name} {c.Cell.ToString().ToLowerInvariant()} {c.HiddenSize}", Math.Log10(t.PackedBytes / 1000.0), t.Metric);
            label.LabelFontSize = 11;
            label.LabelFontColor = ScottPlot.Colors.DarkSlateGray;
        }

        // Log-scale x axis: ticks at 1, 2 and 5 times each power of ten in range.
        var sizes = result.Trials.Where(t => t.PackedBytes > 0).Select(t => t.PackedBytes / 1000.0).DefaultIfEmpty(1).ToArray();
        var ticks = new ScottPlot.TickGenerators.NumericManual();
        for (int decade = (int)Math.Floor(Math.Log10(sizes.Min())); decade <= (int)Math.Ceiling(Math.Log10(sizes.Max())); decade++)
            foreach (var m in new[] { 1, 2, 5 })
            {
                double value = m * Math.Pow(10, decade);
                ticks.AddMajor(Math.Log10(value), value.ToString("G4", CultureInfo.InvariantCulture));
            }
        plot.Axes.Bottom.TickGenerator = ticks;
        plot.Title(title);
        plot.XLabel("packed model size (KB, log scale)");
        plot.YLabel($"validation {result.Objective.Name} ({(result.Objective.HigherIsBetter ? "higher" : "lower")} is better)");
        plot.ShowLegend(ScottPlot.Alignment.UpperRight);
        path.Directory?.Create();
        plot.SavePng(path.FullName, 1100, 700);
    }
}
