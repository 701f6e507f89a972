namespace Microsoft.ML.Quantized.Sweep;

/// <summary>
/// A numeric range of a search space, both ends included. <see cref="LogScale"/> samples and grids uniformly in
/// log space (learning rates, sizes); <see cref="Min"/> = <see cref="Max"/> fixes the value.
/// Sampled values are rounded to 3 significant digits (integers for integer dimensions), so configurations
/// have short, stable keys.
/// </summary>
/// <param name="Min">Smallest value.</param>
/// <param name="Max">Largest value.</param>
/// <param name="LogScale">Sample uniformly in log space (needs <paramref name="Min"/> &gt; 0).</param>
public sealed record SearchRange(double Min, double Max, bool LogScale = false)
{
    /// <summary>A range of one value.</summary>
    public static SearchRange Fixed(double value) => new(value, value);

    /// <summary>A log-scale range.</summary>
    public static SearchRange Log(double min, double max) => new(min, max, LogScale: true);

    /// <summary>E.g. <c>[0.25, 1]</c> or <c>[0.001, 0.03] log</c>.</summary>
    public override string ToString() => FormattableString.Invariant($"[{Min}, {Max}]{(LogScale ? " log" : "")}");
}
