namespace Microsoft.ML.Quantized;

/// <summary>
/// Counts of values in equal-width bins from <paramref name="Low"/> to <paramref name="High"/> (bin i holds
/// <c>[Low + i w, Low + (i + 1) w)</c>, w = <see cref="BinWidth"/>; the last bin also holds <paramref name="High"/>).
/// </summary>
/// <param name="Low">Lower end of the first bin.</param>
/// <param name="High">Upper end of the last bin.</param>
/// <param name="Counts">Values per bin, first to last.</param>
public sealed record ValueHistogram(double Low, double High, IReadOnlyList<long> Counts)
{
    /// <summary>Width of every bin, <c>(High - Low) / bins</c>.</summary>
    public double BinWidth => (High - Low) / Counts.Count;

    /// <summary>The share of the counted values in each bin (each 0-1; all 0 when nothing was counted).</summary>
    public IReadOnlyList<double> Shares()
    {
        double total = Counts.Sum();
        return Counts.Select(c => total == 0 ? 0 : c / total).ToArray();
    }
}
