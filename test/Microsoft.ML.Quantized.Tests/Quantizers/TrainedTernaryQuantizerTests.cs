using TorchSharp;
using static Microsoft.ML.Quantized.Tests.Quantizers.QuantizerTestUtil;

namespace Microsoft.ML.Quantized.Tests.Quantizers;

/// <summary>Zhu et al.'s Trained Ternary Quantization (zttq) on hand-worked values.</summary>
[TestClass]
public sealed class TrainedTernaryQuantizerTests
{
    /// <summary>
    /// w = 0.8, -0.4, 0.02, -1: delta = 0.05 * 1 = 0.05, so 0.8 is above, -0.4 and -1 below, 0.02 inside. The scales start at
    /// W_p = 0.8 and W_n = (0.4 + 1) / 2 = 0.7. With loss sum(q * c), c = 1, 2, 3, 4: dL/dW_p = 1, dL/dW_n = -(2 + 4) = -6,
    /// and the latent gradient is W_p * 1, W_n * 2, 3, W_n * 4 (Eq. 7 and 8).
    /// </summary>
    [TestMethod]
    public void ForwardAndGradients_FollowEquationsSixToEight()
    {
        using var scope = torch.NewDisposeScope();
        var quantizer = (TrainedTernaryQuantizer)Create("zttq");
        Assert.AreEqual(2, quantizer.parameters().Count(), "W_p and W_n exist before the first forward (for the optimizer)");
        var w = Matrix(1, 4, 0.8f, -0.4f, 0.02f, -1f);

        var (q, grad) = ForwardBackward(quantizer, w, Matrix(1, 4, 1, 2, 3, 4));
        AreClose(new float[] { 0.8f, -0.7f, 0f, -0.7f }, q, 1e-7);
        AreClose(new float[] { 0.8f }, quantizer.PositiveScale!, 1e-7);
        AreClose(new float[] { 0.7f }, quantizer.NegativeScale!, 1e-7);
        AreClose(new float[] { 0.8f, 1.4f, 3f, 2.8f }, grad, 1e-6);
        AreClose(new float[] { 1f }, quantizer.PositiveScale!.grad!, 1e-6);
        AreClose(new float[] { -6f }, quantizer.NegativeScale!.grad!, 1e-6);

        // Trained scales are used as they are, and the packed model holds the ternary values as float32.
        using (torch.no_grad()) quantizer.PositiveScale!.fill_(1.5f);
        quantizer.eval();
        AreClose(new float[] { 1.5f, -0.7f, 0f, -0.7f }, quantizer.forward(w), 1e-7);
        var encoded = quantizer.Encode(w);
        Assert.AreEqual(CodeLayout.Float, encoded.Layout);
        AreClose(new float[] { 1.5f, -0.7f, 0f, -0.7f }, encoded.DecodeAll(), 1e-7);
    }

    [TestMethod]
    public void PerRowScales_AndThreshold_AndTheyLoadBack()
    {
        using var scope = torch.NewDisposeScope();
        var options = QuantizerRegistry.Parse("zttq-theta0.5-row");
        var quantizer = (TrainedTernaryQuantizer)QuantizerFactory.Create(options, rows: 2);
        // Row 0: delta = 0.5 * 1 = 0.5: 1 above, -0.4 inside, -0.6 below. Row 1: delta = 0.5 * 0.2 = 0.1: 0.2 above, -0.05 inside.
        var w = Matrix(2, 3, 1f, -0.4f, -0.6f, 0.2f, -0.05f, 0.15f);
        AreClose(new float[] { 1f, 0f, -0.6f, 0.175f, 0f, 0.175f }, quantizer.forward(w), 1e-7);
        AreClose(new float[] { 0.6f, 0f }, quantizer.NegativeScale!, 1e-7);

        using var stream = new MemoryStream();
        using (var writer = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true)) quantizer.save(writer);
        stream.Position = 0;
        var loaded = (TrainedTernaryQuantizer)QuantizerFactory.Create(options, rows: 2);
        using (var reader = new BinaryReader(stream)) loaded.load(reader);
        AreClose(Values(quantizer.PositiveScale!), loaded.PositiveScale!, 0);
        Assert.AreEqual("zttq-theta0.5-row", loaded.RegistryName);
    }
}
