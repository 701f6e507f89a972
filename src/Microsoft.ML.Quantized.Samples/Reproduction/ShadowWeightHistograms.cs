using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized.Samples.Reproduction;

/// <summary>
/// HitNet question 1 asks for the weight distributions the quantizers see. This bins one layer's float (shadow) weights,
/// <c>W_ih</c> and <c>W_hh</c>, each divided by its own mean magnitude so that every quantizer's rule lands at the same
/// place on the axis (TWN's and HitNet's threshold at 0.7, BWN's scale at 1): <see cref="Bins"/> equal bins over
/// [-<see cref="Range"/>, <see cref="Range"/>], values beyond the range counted in the end bins.
/// </summary>
internal static class ShadowWeightHistograms
{
    /// <summary>Bins per histogram: 40 (0.2 mean magnitudes each).</summary>
    public const int Bins = 40;

    /// <summary>Half-width of the binned range, in mean magnitudes: 4.</summary>
    public const int Range = 4;

    /// <summary>The histograms of <paramref name="cell"/>'s <c>W_ih</c> and <c>W_hh</c>, by those names (no graph).</summary>
    public static IReadOnlyDictionary<string, ValueHistogram> Of(QuantizedRecurrentCell cell) => new Dictionary<string, ValueHistogram>
    {
        ["W_ih"] = Of(cell.WeightIh),
        ["W_hh"] = Of(cell.WeightHh),
    };

    /// <summary>The histogram of <paramref name="weight"/> over its mean magnitude (an all-zero tensor counts in the middle bins).</summary>
    public static ValueHistogram Of(Tensor weight)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var w = weight.detach().to_type(ScalarType.Float64).reshape(-1);
        double meanMagnitude = w.abs().mean().item<double>();
        using var divisor = meanMagnitude.ToScalar();
        var scaled = meanMagnitude > 0 ? w.div(divisor) : w;
        // Just inside the ends, so the tails count in the end bins (histc drops values outside [low, high]).
        double edge = Range * (1 - 1e-9);
        using var low = (-edge).ToScalar();
        using var high = edge.ToScalar();
        var counts = scaled.clamp(low, high).histc(Bins, -Range, Range).data<double>().Select(c => (long)Math.Round(c)).ToArray();
        return new ValueHistogram(-Range, Range, counts);
    }
}
