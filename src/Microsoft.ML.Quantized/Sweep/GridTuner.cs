namespace Microsoft.ML.Quantized.Sweep;

/// <summary>
/// Enumerates the whole discretized search space: every choice, and <see cref="PointsPerRange"/> evenly spaced values
/// of each numeric range (log-spaced for log ranges). The order is fixed (the last axis, KURE, varies fastest; then
/// learning rate, hidden size, cell, normalization, slope, activation, weight quantizer); proposes null when every
/// point was tried. <see cref="QuantizationSearchSpace.GridSize"/> gives the count.
/// </summary>
public sealed class GridTuner : ISweepTuner
{
    /// <summary>Default points per numeric range: 3 (both ends and the middle).</summary>
    public const int DefaultPointsPerRange = 3;

    /// <summary>A grid with <paramref name="pointsPerRange"/> points per numeric range (at least 1).</summary>
    public GridTuner(int pointsPerRange = DefaultPointsPerRange)
    {
        CheckPoints(pointsPerRange);
        PointsPerRange = pointsPerRange;
    }

    /// <summary>Values taken from each numeric range.</summary>
    public int PointsPerRange { get; }

    /// <inheritdoc />
    public QuantizationConfiguration? Propose(TunerContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var axes = context.SearchSpace.Dimensions().Select(d => d.GridValues(PointsPerRange)).ToArray();
        long size = 1;
        foreach (var a in axes) size = checked(size * a.Count);
        // Start where this trial's index points and walk on: O(1) per proposal when nothing was skipped.
        for (long step = 0; step < size; step++)
        {
            long index = (context.TrialIndex + step) % size;
            var configuration = context.SearchSpace.Decode(PointAt(axes, index));
            if (!context.IsTried(configuration)) return configuration;
        }
        return null;
    }

    internal static void CheckPoints(int pointsPerRange)
    {
        if (pointsPerRange < 1)
            throw new ArgumentOutOfRangeException(nameof(pointsPerRange), pointsPerRange, "GridTuner.PointsPerRange must be at least 1 (3 = both ends and the middle).");
    }

    /// <summary>Mixed-radix decoding of a grid index, last axis fastest.</summary>
    private static double[] PointAt(IReadOnlyList<double>[] axes, long index)
    {
        var point = new double[axes.Length];
        for (int i = axes.Length - 1; i >= 0; i--)
        {
            point[i] = axes[i][(int)(index % axes[i].Count)];
            index /= axes[i].Count;
        }
        return point;
    }
}
