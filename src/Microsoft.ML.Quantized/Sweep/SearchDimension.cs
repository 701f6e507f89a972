using System.Globalization;

namespace Microsoft.ML.Quantized.Sweep;

/// <summary>
/// One axis of a compiled search space, as the tuners see it: a categorical axis (values are choice indices) or a
/// numeric one (values are the parameter itself). Numeric axes work in "internal" coordinates: the logarithm for
/// log-scale ranges, the value otherwise.
/// </summary>
internal sealed class SearchDimension
{
    private SearchDimension(string name, int count, double min, double max, bool logScale, bool isInteger)
    {
        Name = name;
        Count = count;
        Min = min;
        Max = max;
        LogScale = logScale;
        IsInteger = isInteger;
    }

    public string Name { get; }

    /// <summary>Number of choices; 0 for a numeric axis.</summary>
    public int Count { get; }

    public bool IsCategorical => Count > 0;

    public double Min { get; }

    public double Max { get; }

    public bool LogScale { get; }

    public bool IsInteger { get; }

    /// <summary>Low end in internal coordinates.</summary>
    public double Low => ToInternal(Min);

    /// <summary>High end in internal coordinates.</summary>
    public double High => ToInternal(Max);

    public static SearchDimension Categorical(string name, int count) => new(name, count, 0, count - 1, false, true);

    public static SearchDimension Numeric(string name, SearchRange range, bool isInteger) =>
        new(name, 0, range.Min, range.Max, range.LogScale, isInteger);

    public double ToInternal(double value) => LogScale ? Math.Log(value) : value;

    /// <summary>Maps back from internal coordinates and snaps to a representable value.</summary>
    public double FromInternal(double u) => Snap(LogScale ? Math.Exp(u) : u);

    /// <summary>Clamps into the range and rounds (integers; otherwise 3 significant digits).</summary>
    public double Snap(double value)
    {
        if (IsCategorical) return Math.Clamp(Math.Round(value), 0, Count - 1);
        value = Math.Clamp(value, Min, Max);
        value = IsInteger
            ? Math.Round(value, MidpointRounding.AwayFromZero)
            : double.Parse(value.ToString("G3", CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
        return Math.Clamp(value, Min, Max);
    }

    /// <summary>Whether <paramref name="value"/> lies on this axis.</summary>
    public bool Contains(double value)
    {
        if (IsCategorical) return value >= 0 && value < Count && value == Math.Floor(value);
        if (IsInteger && value != Math.Floor(value)) return false;
        double tolerance = 1e-12 * Math.Max(1, Math.Abs(Max));
        return value >= Min - tolerance && value <= Max + tolerance;
    }

    public double SampleUniform(Random random) => IsCategorical
        ? random.Next(Count)
        : FromInternal(Low + random.NextDouble() * (High - Low));

    /// <summary>
    /// The values a grid visits: every choice of a categorical axis; <paramref name="pointsPerRange"/> evenly
    /// spaced points (in internal coordinates) of a numeric one, snapped and without duplicates.
    /// </summary>
    public IReadOnlyList<double> GridValues(int pointsPerRange)
    {
        if (IsCategorical) return Enumerable.Range(0, Count).Select(i => (double)i).ToArray();
        if (Min == Max || pointsPerRange == 1) return new[] { Snap(Min == Max ? Min : FromInternal((Low + High) / 2)) };
        var values = new List<double>();
        for (int i = 0; i < pointsPerRange; i++)
        {
            var v = i == pointsPerRange - 1 ? Max : FromInternal(Low + (High - Low) * i / (pointsPerRange - 1));
            v = i == 0 ? Snap(Min) : Snap(v);
            if (!values.Contains(v)) values.Add(v);
        }
        return values;
    }
}
