using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized.Tests;

/// <summary>
/// <see cref="InputTermsFunction"/>, a cell's input term of every step as one operation, against the same term built from
/// libtorch's operations and the normalization modules' own forms (<see cref="RecurrentLayerNorm.forward"/>,
/// <see cref="RecurrentBatchNorm.ForwardSteps"/>) in float64: outputs, the gradients of the input, the weight, the gain and
/// the bias, and batch norm's running statistics; on a sequence short enough for one part and one long enough to be cut into
/// parts that run on several threads, with either step-product kernel.
/// </summary>
[TestClass]
public sealed class InputTermsFunctionTests
{
    [TestMethod]
    [DataRow("none", 3, true, true)]
    [DataRow("none", 24, true, true)]
    [DataRow("layer-per-gate", 3, true, true)]
    [DataRow("layer-per-gate", 24, true, true)]
    [DataRow("layer-per-gate", 24, true, false)]
    [DataRow("layer-joint", 24, true, true)]
    [DataRow("batch", 3, true, true)]
    [DataRow("batch", 24, true, true)]
    [DataRow("batch", 24, false, true)]
    public void EqualsLibTorchOperations(string normalization, int steps, bool training, bool managed)
    {
        // 24 steps x 16 rows x 1024 features is 393,216 values: three parts of the element-wise passes. Float64 modules.
        var defaultType = get_default_dtype();
        bool machineDefault = StepProduct.Managed;
        set_default_dtype(ScalarType.Float64);
        StepProduct.Managed = managed;
        try
        {
            Run(normalization, steps, training);
        }
        finally
        {
            set_default_dtype(defaultType);
            StepProduct.Managed = machineDefault;
        }
    }

    private static void Run(string normalization, int steps, bool training)
    {
        const int Rows = 16, Inputs = 37, Features = 1024;
        using var scope = NewDisposeScope();
        manual_seed(steps + normalization.Length);
        using var layer = normalization.StartsWith("layer") ? new RecurrentLayerNorm("ln", Features, normalization == "layer-per-gate" ? 4 : 1) : null;
        using var batch = normalization == "batch" ? new RecurrentBatchNorm("bn", Features, steps: 10) : null;
        nn.Module? module = (nn.Module?)layer ?? batch;
        using (no_grad())
        {
            foreach (var parameter in module?.parameters() ?? Enumerable.Empty<TorchSharp.Modules.Parameter>()) parameter.copy_(randn_like(parameter));
            if (batch is not null)
            {
                batch.RunningMean.copy_(randn_like(batch.RunningMean));
                batch.RunningVar.copy_(rand_like(batch.RunningVar) + 0.5);
            }
        }
        if (training) module?.train(); else module?.eval();
        var gain = layer?.Gain ?? batch?.Gain;
        var normBias = layer?.Bias ?? batch?.Bias;
        var termBias = randn(Features).requires_grad_(true);
        var input = (randn(steps, Rows, Inputs) * 2 + 0.5).requires_grad_(true);
        var weight = randn(Features, Inputs).requires_grad_(true);
        var outputGradient = randn(steps, Rows, Features);

        // libtorch's operations first (batch norm's running statistics after them kept), then the function from the same
        // starting statistics, with the normalization's bias folded into the term's as the cells fold it.
        (Tensor, Tensor)? runningBefore = batch is null ? null : (batch.RunningMean.clone(), batch.RunningVar.clone());
        var products = input.matmul(weight.t());
        var expected = (layer is not null ? layer.forward(products) : batch is not null ? batch.ForwardSteps(products) : products) + termBias;
        expected.backward(new[] { outputGradient });
        var expectedGradients = Gradients(input, weight, gain, normBias, termBias);
        (Tensor, Tensor)? runningAfter = batch is null ? null : (batch.RunningMean.clone(), batch.RunningVar.clone());
        if (batch is not null)
        {
            using (no_grad())
            {
                batch.RunningMean.copy_(runningBefore!.Value.Item1);
                batch.RunningVar.copy_(runningBefore.Value.Item2);
            }
        }

        var settings = new SequenceNormalization(layer, batch, training);
        var bias = normBias is null ? termBias : termBias + normBias;
        var actual = InputTermsFunction.Run(input, weight, gain, bias, settings);
        actual.backward(new[] { outputGradient });
        var actualGradients = Gradients(input, weight, gain, normBias, termBias);

        AssertClose(expected, actual, "output");
        foreach (var (name, value) in expectedGradients) AssertClose(value, actualGradients[name], $"gradient of the {name}");
        if (batch is not null)
        {
            AssertClose(runningAfter!.Value.Item1, batch.RunningMean, "running means");
            AssertClose(runningAfter.Value.Item2, batch.RunningVar, "running variances");
            if (training) Assert.IsFalse(runningBefore!.Value.Item1.allclose(batch.RunningMean), "the running means moved");
        }
    }

    /// <summary>The gradients so far by name (copies), each then set back to zero.</summary>
    private static Dictionary<string, Tensor> Gradients(Tensor input, Tensor weight, Tensor? gain, Tensor? normBias, Tensor termBias)
    {
        var gradients = new Dictionary<string, Tensor>();
        foreach (var (name, tensor) in new[] { ("input", input), ("weight", weight), ("gain", gain), ("normalization's bias", normBias), ("term's bias", termBias) })
        {
            if (tensor is null) continue;
            gradients[name] = tensor.grad!.clone();
            tensor.grad!.zero_();
        }
        return gradients;
    }

    private static void AssertClose(Tensor expected, Tensor actual, string what)
    {
        CollectionAssert.AreEqual(expected.shape, actual.shape, what);
        double difference = (expected - actual).abs().max().item<double>();
        Assert.IsTrue(difference < 1e-9, $"{what}: largest difference {difference:E3}");
    }
}
