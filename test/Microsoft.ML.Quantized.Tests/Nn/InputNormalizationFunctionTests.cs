using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized.Tests;

/// <summary>
/// <see cref="InputNormalizationFunction"/>, the input term's normalization of every step as one operation, against the
/// normalization modules' own libtorch forms (<see cref="RecurrentLayerNorm.forward"/>, <see cref="RecurrentBatchNorm.ForwardSteps"/>)
/// in float64: outputs, the gradients of the products, the gain and the bias, and batch norm's running statistics; on a
/// sequence short enough for one part and one long enough to be cut into parts that run on several threads.
/// </summary>
[TestClass]
public sealed class InputNormalizationFunctionTests
{
    [TestMethod]
    [DataRow("layer-per-gate", 3, true)]
    [DataRow("layer-per-gate", 24, true)]
    [DataRow("layer-joint", 24, true)]
    [DataRow("batch", 3, true)]
    [DataRow("batch", 24, true)]
    [DataRow("batch", 24, false)]
    public void EqualsTheModulesLibTorchForm(string normalization, int steps, bool training)
    {
        // 24 steps x 16 rows x 1024 features is 393,216 values: three parts of the pass. Float64 modules.
        using var scope = NewDisposeScope();
        manual_seed(steps + normalization.Length);
        var defaultType = get_default_dtype();
        set_default_dtype(ScalarType.Float64);
        try
        {
            Run(normalization, steps, training);
        }
        finally { set_default_dtype(defaultType); }
    }

    private static void Run(string normalization, int steps, bool training)
    {
        const int Rows = 16, Features = 1024;
        using var layer = normalization.StartsWith("layer") ? new RecurrentLayerNorm("ln", Features, normalization == "layer-per-gate" ? 4 : 1) : null;
        using var batch = normalization == "batch" ? new RecurrentBatchNorm("bn", Features, steps: 10) : null;
        nn.Module module = (nn.Module?)layer ?? batch!;
        using (no_grad())
        {
            foreach (var parameter in module.parameters()) parameter.copy_(randn_like(parameter));
            if (batch is not null)
            {
                batch.RunningMean.copy_(randn_like(batch.RunningMean));
                batch.RunningVar.copy_(rand_like(batch.RunningVar) + 0.5);
            }
        }
        if (training) module.train(); else module.eval();
        var gain = layer?.Gain ?? batch!.Gain;
        var bias = layer?.Bias ?? batch!.Bias;
        var products = (randn(steps, Rows, Features, dtype: ScalarType.Float64) * 3 + 1).requires_grad_(true);
        var outputGradient = randn(steps, Rows, Features, dtype: ScalarType.Float64);

        // The modules' libtorch forms first (batch norm's running statistics after them kept), then the function from the same
        // starting statistics.
        (Tensor, Tensor)? runningBefore = batch is null ? null : (batch.RunningMean.clone(), batch.RunningVar.clone());
        var expected = layer is not null ? layer.forward(products) : batch!.ForwardSteps(products);
        expected.backward(new[] { outputGradient });
        var (expectedProducts, expectedGain, expectedBias) = (products.grad!.clone(), gain.grad!.clone(), bias.grad!.clone());
        (Tensor, Tensor)? runningAfter = batch is null ? null : (batch.RunningMean.clone(), batch.RunningVar.clone());
        products.grad!.zero_();
        gain.grad!.zero_();
        bias.grad!.zero_();
        if (batch is not null)
        {
            using (no_grad())
            {
                batch.RunningMean.copy_(runningBefore!.Value.Item1);
                batch.RunningVar.copy_(runningBefore.Value.Item2);
            }
        }

        var actual = InputNormalizationFunction.Run(products, gain, bias, new SequenceNormalization(layer, batch, training));
        actual.backward(new[] { outputGradient });

        AssertClose(expected, actual, "output");
        AssertClose(expectedProducts, products.grad!, "gradient of the products");
        AssertClose(expectedGain, gain.grad!, "gradient of the gain");
        AssertClose(expectedBias, bias.grad!, "gradient of the bias");
        if (batch is not null)
        {
            AssertClose(runningAfter!.Value.Item1, batch.RunningMean, "running means");
            AssertClose(runningAfter.Value.Item2, batch.RunningVar, "running variances");
            if (training) Assert.IsFalse(runningBefore!.Value.Item1.allclose(batch.RunningMean), "the running means moved");
        }
    }

    private static void AssertClose(Tensor expected, Tensor actual, string what)
    {
        CollectionAssert.AreEqual(expected.shape, actual.shape, what);
        double difference = (expected - actual).abs().max().item<double>();
        Assert.IsTrue(difference < 1e-10, $"{what}: largest difference {difference:E3}");
    }
}
