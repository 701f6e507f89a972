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
            var (e, n) = SquaredNorms(w, q);
            error += e;
            norm += n;
        }
        return Ratio(error, norm);
    }

    /// <summary>Relative reconstruction error <c>||quantized - weight|| / ||weight||</c> of one tensor (0 for an all-zero <paramref name="weight"/>).</summary>
    public static double Relative(Tensor weight, Tensor quantized)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var (error, norm) = SquaredNorms(weight.detach(), quantized.detach());
        return Ratio(error, norm);
    }

    /// <summary><c>||q - w||^2</c> and <c>||w||^2</c> in double precision.</summary>
    private static (double Error, double Norm) SquaredNorms(Tensor w, Tensor q) =>
        ((q - w).to_type(ScalarType.Float64).pow(Scalars.Two).sum().item<double>(), w.to_type(ScalarType.Float64).pow(Scalars.Two).sum().item<double>());

    private static double Ratio(double error, double norm) => norm == 0 ? 0 : Math.Sqrt(error / norm);
}
