using Microsoft.ML.Quantized.Samples.Reproduction;
using static Microsoft.ML.Quantized.Tests.RecurrentTestSupport;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized.Tests.Samples;

/// <summary>The study's weight histograms (HitNet question 1) against hand-binned tensors.</summary>
[TestClass]
public sealed class ShadowWeightHistogramsTests
{
    [TestMethod]
    public void Bins_values_over_their_mean_magnitude_with_the_tails_in_the_end_bins()
    {
        using var scope = NewDisposeScope();
        // Mean |w| = (0.5 + 1 + 1.5 + 2 + 10 + 0.125 + 0.125 + 0.75) / 8 = 2 (all exact in binary): over it the values are
        // -0.25, 0.5, -0.75, 1, 5 (beyond 4: the last bin), -0.0625, 0.0625, 0.375. Bins of 0.2 from -4: index = floor((x + 4) / 0.2).
        var histogram = ShadowWeightHistograms.Of(tensor(new float[] { -0.5f, 1, -1.5f, 2, 10, -0.125f, 0.125f, 0.75f }));
        var expected = new long[ShadowWeightHistograms.Bins];
        foreach (double x in new[] { -0.25, 0.5, -0.75, 1.0, -0.0625, 0.0625, 0.375 }) expected[(int)Math.Floor((x + 4) * 5)]++;
        expected[^1]++; // 5
        CollectionAssert.AreEqual(expected, histogram.Counts.ToArray());
        Assert.AreEqual(-4.0, histogram.Low);
        Assert.AreEqual(4.0, histogram.High);
    }

    [TestMethod]
    public void A_cell_reports_its_input_and_recurrent_float_weights()
    {
        using var scope = NewDisposeScope();
        using var cell = new QuantizedLstmCell("lstm", 2, Options(RecurrentCellKind.Lstm, 3), Sign, Float);
        using (no_grad())
        {
            cell.WeightIh.fill_(-0.3f); // all at -1 mean magnitude: bin floor(3 / 0.2) = 15
            cell.WeightHh.fill_(0.3f);  // all at +1: bin 25
        }
        var histograms = ShadowWeightHistograms.Of(cell);
        Assert.AreEqual(12 * 2L, histograms["W_ih"].Counts[15]);
        Assert.AreEqual(12 * 2L, histograms["W_ih"].Counts.Sum());
        Assert.AreEqual(12 * 3L, histograms["W_hh"].Counts[25]);
        Assert.AreEqual(12 * 3L, histograms["W_hh"].Counts.Sum());
    }
}
