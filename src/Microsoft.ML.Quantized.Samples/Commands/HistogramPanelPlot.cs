using ScottPlot;

namespace Microsoft.ML.Quantized.Samples.Commands;

/// <summary>
/// One panel per histogram name (a gate of the first recurrent layer, <see cref="GateStatistics.PostActivationHistogram"/>, or a
/// weight tensor): the share of values in each bin, one line per model (or per slope), so models can be compared panel by panel.
/// </summary>
internal static class HistogramPanelPlot
{
    private static readonly ScottPlot.Color[] Palette =
        [ScottPlot.Colors.Gray, ScottPlot.Colors.SteelBlue, ScottPlot.Colors.OrangeRed, ScottPlot.Colors.SeaGreen, ScottPlot.Colors.Purple, ScottPlot.Colors.Orange,
         ScottPlot.Colors.Black, ScottPlot.Colors.Magenta, ScottPlot.Colors.Olive, ScottPlot.Colors.Brown, ScottPlot.Colors.Teal, ScottPlot.Colors.Gold];

    /// <summary>The histograms of layer 0's gates in <paramref name="gates"/>, by gate name, in gate order.</summary>
    public static IReadOnlyDictionary<string, ValueHistogram> FirstLayer(IEnumerable<GateStatistics> gates) =>
        gates.Where(g => g.Layer == 0).ToDictionary(g => g.Gate, g => g.PostActivationHistogram);

    /// <summary>
    /// Writes one panel per histogram of the first model, one line per model (its name and its histograms by panel name), to
    /// <paramref name="path"/>; <paramref name="xLabel"/> names the binned value (e.g. <c>post-activation</c>).
    /// </summary>
    public static void Save(IReadOnlyList<(string Name, IReadOnlyDictionary<string, ValueHistogram> Panels)> models, string path, string xLabel)
    {
        var gates = models[0].Panels.Keys.ToArray();
        if (gates.Length == 0) throw new InvalidOperationException("No histograms were recorded (gate statistics need RecordGates).");
        var multiplot = new ScottPlot.Multiplot();
        multiplot.AddPlots(gates.Length);
        multiplot.Layout = new ScottPlot.MultiplotLayouts.Columns();
        for (int g = 0; g < gates.Length; g++)
        {
            var plot = multiplot.GetPlot(g);
            for (int m = 0; m < models.Count; m++)
            {
                var histogram = models[m].Panels[gates[g]];
                var centers = Enumerable.Range(0, histogram.Counts.Count).Select(b => histogram.Low + (b + 0.5) * histogram.BinWidth).ToArray();
                var line = plot.Add.Scatter(centers, histogram.Shares().ToArray());
                line.LegendText = models[m].Name;
                line.Color = Palette[m % Palette.Length];
                line.LineWidth = 2;
                line.MarkerSize = 0;
            }
            plot.Title(gates[g]);
            plot.XLabel(xLabel);
            if (g == 0)
            {
                plot.YLabel("share of values");
                plot.ShowLegend(ScottPlot.Alignment.UpperCenter);
            }
            else
            {
                plot.HideLegend();
            }
        }
        multiplot.SavePng(path, 360 * gates.Length, 420);
    }
}
