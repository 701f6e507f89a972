using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized.Samples.Reproduction;

/// <summary>
/// Hou et al. (2019) state the exploding-gradient condition of a quantized LSTM through lambda_1, the largest singular
/// value of the recurrent weight matrix: BinaryConnect's +-1 weights have a lambda_1 about sqrt(H) times that of a trained
/// float matrix, and the gains of weight, layer or batch normalization bring it back. This reads, for one layer, lambda_1 of
/// the float (shadow) <c>W_hh</c>, of the matrix the cell computes with (quantized, then row-normalized under weight
/// normalization), and the mean magnitude of the learned gain of the hidden-side normalization.
/// </summary>
/// <param name="FloatLambda1">Largest singular value of the float <c>W_hh</c> [G*H, H].</param>
/// <param name="QuantizedLambda1">Largest singular value of the effective <c>W_hh</c> the cell multiplies h by.</param>
/// <param name="MeanGain">
/// Mean |g| of the hidden-side normalization's gain: weight normalization's row norms, layer or batch normalization's
/// gains; NaN without normalization.
/// </param>
internal sealed record RecurrentSpectrum(double FloatLambda1, double QuantizedLambda1, double MeanGain)
{
    /// <summary>The spectrum of <paramref name="cell"/>'s recurrent matrix (no graph; the cell's mode is not changed).</summary>
    public static RecurrentSpectrum Of(QuantizedRecurrentCell cell)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var (_, effective) = cell.EffectiveWeights();
        var gain = cell.WeightHhNorm?.Gain ?? cell.HiddenLayerNorm?.Gain ?? cell.HiddenBatchNorm?.Gain as Tensor;
        return new RecurrentSpectrum(
            LargestSingularValue(cell.WeightHh),
            LargestSingularValue(effective),
            gain is null ? double.NaN : gain.abs().mean().item<float>());
    }

    /// <summary>The largest singular value of a matrix (its spectral norm), in float64.</summary>
    public static double LargestSingularValue(Tensor matrix)
    {
        using var scope = NewDisposeScope();
        return linalg.svdvals(matrix.detach().to_type(ScalarType.Float64))[0].item<double>();
    }
}
