using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized.Tests.Quantizers;

/// <summary>Small helpers for the quantizer tests.</summary>
internal static class QuantizerTestUtil
{
    public static Tensor Matrix(int rows, int columns, params float[] values) => torch.tensor(values, new long[] { rows, columns });

    public static float[] Values(Tensor t) => t.detach().cpu().contiguous().to_type(ScalarType.Float32).data<float>().ToArray();

    public static void AreClose(float[] expected, float[] actual, double tolerance = 1e-6, string? message = null)
    {
        Assert.AreEqual(expected.Length, actual.Length, message);
        for (int i = 0; i < expected.Length; i++)
            Assert.AreEqual(expected[i], actual[i], tolerance, $"{message} [index {i}]: expected {expected[i]}, got {actual[i]}; all: [{string.Join(", ", actual)}]");
    }

    public static void AreClose(float[] expected, Tensor actual, double tolerance = 1e-6, string? message = null) =>
        AreClose(expected, Values(actual), tolerance, message);

    /// <summary>Forward in training mode with a gradient-tracking copy of <paramref name="w"/>; returns (q values, d sum(q * coeffs) / dw).</summary>
    public static (float[] Q, float[] Grad) ForwardBackward(Quantizer quantizer, Tensor w, Tensor coeffs, bool train = true)
    {
        using var scope = torch.NewDisposeScope();
        quantizer.train(train);
        var leaf = w.detach().clone().requires_grad_(true);
        var q = quantizer.forward(leaf);
        (q * coeffs).sum().backward();
        return (Values(q), Values(leaf.grad!));
    }

    public static Quantizer Create(string name) => QuantizerFactory.Create(QuantizerRegistry.Parse(name));
}
