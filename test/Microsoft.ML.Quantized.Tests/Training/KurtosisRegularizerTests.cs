using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized.Tests;

[TestClass]
public sealed class KurtosisRegularizerTests
{
    private static readonly string Train = TinyCorpus.Text(120);
    private static readonly Vocabulary Chars = Vocabulary.FromCharacters(Train);

    [TestMethod]
    public void ItsGradientDrivesAGaussianTensorTowardUniformKurtosis()
    {
        torch.manual_seed(5);
        var w = new Parameter(torch.randn(64, 64));
        double before = Kurtosis.Value(w);
        var regularizer = new KurtosisRegularizer(new KureOptions(), new Tensor[] { w });
        using var optimizer = torch.optim.Adam(new[] { w }, 0.01);
        double firstLoss = double.NaN, lastLoss = double.NaN;
        for (int step = 0; step < 300; step++)
        {
            using var scope = NewDisposeScope();
            optimizer.zero_grad();
            var loss = regularizer.Loss();
            if (step == 0) firstLoss = loss.item<float>();
            lastLoss = loss.item<float>();
            loss.backward();
            optimizer.step();
        }
        double after = Kurtosis.Value(w);
        Assert.AreEqual(3.0, before, 0.15, "starts Gaussian");
        Assert.IsTrue(after < 2.0, $"KURE should pull kurtosis toward 1.8: {before:F3} -> {after:F3}");
        Assert.AreEqual(Math.Pow(before - 1.8, 2), firstLoss, 1e-3, "loss = lambda * (Kurt - target)^2");
        Assert.IsTrue(lastLoss < 0.1 * firstLoss, $"loss {firstLoss:F4} -> {lastLoss:F4}");
        w.Dispose();
    }

    [TestMethod]
    public void LossIsLambdaTimesTheMeanSquaredDistanceAndZeroForLambdaZero()
    {
        using var scope = NewDisposeScope();
        var a = torch.tensor(new float[] { -1, 1, -1, 1 }); // kurtosis 1
        var b = torch.tensor(new float[] { -2, 0, 0, 2 });  // kurtosis 2
        var loss = new KurtosisRegularizer(new KureOptions { Lambda = 0.5, Target = 1.8 }, new[] { a, b }).Loss().item<float>();
        Assert.AreEqual(0.5 * (0.64 + 0.04) / 2, loss, 1e-5);
        var off = new KurtosisRegularizer(new KureOptions { Lambda = 0 }, new[] { a, b }).Loss();
        Assert.AreEqual(0f, off.item<float>());
        Assert.AreEqual(0f, new KurtosisRegularizer(new KureOptions(), Array.Empty<Tensor>()).Loss().item<float>());
    }

    [TestMethod]
    public void TensorsSelectTheLanguageModelsWeightMatrices()
    {
        using var network = new LanguageModelNetwork(10, TinyCorpus.Model());
        Assert.AreEqual(2, KurtosisRegularizer.For(network.WeightMatrices(), new KureOptions()).Weights.Count, "weight_ih and weight_hh");
        Assert.AreEqual(4, KurtosisRegularizer.For(network.WeightMatrices(), new KureOptions { Tensors = KurtosisTensors.All }).Weights.Count);
        var outer = KurtosisRegularizer.For(network.WeightMatrices(), new KureOptions { Tensors = KurtosisTensors.Embedding | KurtosisTensors.Decoder });
        CollectionAssert.AreEquivalent(new[] { "embedding", "decoder.weight" },
            network.WeightMatrices().Where(m => outer.Weights.Any(w => w.Handle == m.Weight.Handle)).Select(m => m.Name).ToArray());
        Assert.AreEqual(0, KurtosisRegularizer.For(network.WeightMatrices(), new KureOptions { Tensors = KurtosisTensors.None }).Weights.Count);
    }

    [TestMethod]
    [DataRow(double.NaN, 1.8, "KureOptions.Lambda")]
    [DataRow(-0.1, 1.8, "KureOptions.Lambda")]
    [DataRow(double.PositiveInfinity, 1.8, "KureOptions.Lambda")]
    [DataRow(1.0, 1.0, "KureOptions.Target")]
    [DataRow(1.0, 0.5, "KureOptions.Target")]
    [DataRow(1.0, 11.0, "KureOptions.Target")]
    [DataRow(1.0, double.NaN, "KureOptions.Target")]
    public void BadOptionsAreRejectedWithTheOptionNamed(double lambda, double target, string option)
    {
        var kure = new KureOptions { Lambda = lambda, Target = target };
        var direct = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => OptionsValidator.Validate(kure));
        Assert.AreEqual(option, direct.ParamName);
        StringAssert.Contains(direct.Message, option);
        var viaTraining = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() =>
            QuantizedLanguageModel.Train(Chars, Train, null, TinyCorpus.Model(), new TrainingOptions { Kure = kure }));
        Assert.AreEqual(option, viaTraining.ParamName);
        var bad = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => OptionsValidator.Validate(new KureOptions { Tensors = (KurtosisTensors)8 }));
        StringAssert.Contains(bad.Message, "KureOptions.Tensors");
    }

    [TestMethod]
    public void TrainingWithKureChangesTheRecurrentKurtosisTowardTheTarget()
    {
        // Recurrent weights start uniform (kurtosis 1.8); a target of 3 shows the term is applied during training.
        var training = QuantizedLanguageModelTests.WithSteps(TinyCorpus.Training(1), 8);
        using var plain = QuantizedLanguageModel.Train(Chars, Train, null, TinyCorpus.Model(), training);
        training.Kure = new KureOptions { Lambda = 1, Target = 3.0 };
        using var kure = QuantizedLanguageModel.Train(Chars, Train, null, TinyCorpus.Model(), training);
        double Mean(QuantizedLanguageModel m) => m.Network.Recurrent.QuantizedWeights().Average(w => Kurtosis.Value(w.Weight));
        double p = Mean(plain), k = Mean(kure);
        Assert.IsTrue(k > p + 0.2, $"mean recurrent kurtosis: without KURE {p:F3}, with target 3 {k:F3}");
        Assert.IsTrue(double.IsFinite(kure.History[0].TrainingLoss));
    }
}
