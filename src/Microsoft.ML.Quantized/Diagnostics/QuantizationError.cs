using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized;

/// <summary>How far quantized weights lie from their float shadow weights.</summary>
internal static class QuantizationError
{
    /// <summary>
    /// Relative reconstruction error <c>sqrt(sum ||Q(W) - W||^2 / sum ||W||^2)</c> over <paramref name="matrices"/>,
    /// each quantized in evaluation mode (deterministic rounding). 0 for identity quantizers.
    /// </summary>
    public static double Relative(IEnumerable<(string Name, Tensor Weight, Quantizer Quantizer)> matrices)
    {
        double error = 0, norm = 0;
        using var noGrad = no_grad();
        foreach (var (_, weight, quantizer) in matrices)
        {
            using var scope = NewDisposeScope();
            bool wasTraining = quantizer.training;
            quantizer.eval();
            var w = weight.detach();
            var q = quantizer.forward(w);
            if (wasTraining) quantizer.train();
            error += (q - w).to_type(ScalarType.Float64).pow(Scalars.Two).sum().item<double>();
            norm += w.to_type(ScalarType.Float64).pow(Scalars.Two).sum().item<double>();
        }
        return norm == 0 ? 0 : Math.Sqrt(error / norm);
    }
}
