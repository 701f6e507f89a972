using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized.Tests.Inference;

/// <summary>
/// The activation quantizers' evaluation forms: bit-identical to the torch quantizer in evaluation mode on one vector
/// (a batch of one, as the engine scores), and hand-computed cases.
/// </summary>
[TestClass]
public sealed class PackedActivationQuantizerTests
{
    [TestMethod]
    [DataRow("btq")]
    [DataRow("uniform4")]
    [DataRow("uniform3-row")]
    [DataRow("uniform2-sr")]
    [DataRow("uniform4-pow2")]
    [DataRow("uniform5-pow2@0.8")]
    [DataRow("uniform8@1.3")]
    [DataRow("uniform4-lsq")]
    [DataRow("uniform3-lsq@1.1")]
    [DataRow("uniform4-lsq-mse")]
    public void Apply_EqualsTorchEvaluationBitForBit(string name)
    {
        manual_seed(4);
        using var scope = NewDisposeScope();
        using var quantizer = QuantizerFactory.Create(QuantizerRegistry.Parse(name));
        quantizer.train();
        quantizer.forward(randn(1, 37)); // initializes a learned step from the first activations
        quantizer.eval();
        var packed = PackedModelEncoder.Activation(quantizer);
        for (int trial = 0; trial < 20; trial++)
        {
            var x = randn(1, 37).mul(trial % 2 == 0 ? Scalars.Two : Scalars.Half);
            float[] expected;
            using (no_grad()) expected = EngineTestModels.Values(quantizer.forward(x));
            var actual = EngineTestModels.Values(x);
            packed.Apply(actual);
            CollectionAssert.AreEqual(expected, actual, $"{name}, trial {trial}");
        }
    }

    [TestMethod]
    public void HandComputed()
    {
        float[] x = [0.4f, -0.6f, 0.5f, 1.7f, -0.51f];
        PackedActivationQuantizer.BernoulliTernary.Apply(x);
        CollectionAssert.AreEqual(new[] { 0f, -1f, 0f, 1f, -1f }, x);

        // uniform3: Qp = 3, step = max |x| / 3 = 1; 1.5 and 2.5 round to even.
        float[] y = [3f, 1.5f, -2.5f, 0.4f];
        PackedActivationQuantizer.Uniform(3, 0f, 1f, false).Apply(y);
        CollectionAssert.AreEqual(new[] { 3f, 2f, -2f, 0f }, y);

        // A fixed step of 0.5 clips at 3 * 0.5.
        float[] z = [3f, -0.8f, 0.2f];
        PackedActivationQuantizer.Uniform(3, 0.5f, 1f, false).Apply(z);
        CollectionAssert.AreEqual(new[] { 1.5f, -1f, 0f }, z);

        // All zeros: the step falls back to 1 and zeros stay zeros.
        float[] zeros = new float[4];
        PackedActivationQuantizer.Uniform(4, 0f, 1f, true).Apply(zeros);
        CollectionAssert.AreEqual(new float[4], zeros);
    }

    [TestMethod]
    public void PowerOfTwoAtLeast_EqualsTorch()
    {
        var rng = new Random(1);
        var steps = Enumerable.Range(0, 200).Select(i => (float)Math.Pow(2, rng.NextDouble() * 40 - 20)).Concat([0.25f, 1f, 4f, 1e-12f]).ToArray();
        using var scope = NewDisposeScope();
        var expected = EngineTestModels.Values(UniformQuantizer.PowerOfTwoAtLeast(tensor(steps)));
        CollectionAssert.AreEqual(expected, steps.Select(PackedActivationQuantizer.PowerOfTwoAtLeast).ToArray());
    }

    [TestMethod]
    public void WeightQuantizerAsActivation_IsNotSupported()
    {
        using var twn = QuantizerFactory.Create("twn");
        StringAssert.Contains(Assert.ThrowsExactly<NotSupportedException>(() => PackedModelEncoder.Activation(twn)).Message, "twn");
    }
}
