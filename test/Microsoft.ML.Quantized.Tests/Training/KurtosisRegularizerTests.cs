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
        var regularizer = new KurtosisRegularizer(new KureOptions { Lambda = 1.0 }, new Tensor[] { w });
        using var optimizer = new Optimizers.Adam(new[] { w }, 0.01, 0.0);
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
    public void PerRowLossIsTheMeanOverRowsAndOneVectorIsOneRow()
    {
        using var scope = NewDisposeScope();
        var matrix = torch.tensor(new float[] { -1, 1, -1, 1, -2, 0, 0, 2 }).reshape(2, 4); // row kurtosis 1 and 2
        var vector = torch.tensor(new float[] { -2, 0, 0, 2 });
        var kure = new KureOptions { Lambda = 0.5, PerRow = true };
        Assert.AreEqual(0.5 * ((0.64 + 0.04) / 2 + 0.04) / 2, new KurtosisRegularizer(kure, new[] { matrix, vector }).Loss().item<float>(), 1e-5);
        var column = vector.reshape(4, 1); // a layer with one input: one row, not four one-value rows
        Assert.AreEqual(0.5 * 0.04, new KurtosisRegularizer(kure, new[] { column }).Loss().item<float>(), 1e-5);
        // Per tensor the rows pool into one distribution: {-1,1,-1,1,-2,0,0,2} has variance 1.5 and mean fourth power 4.5, kurtosis 2.
        Assert.AreEqual(0.5 * 0.04, new KurtosisRegularizer(new KureOptions { Lambda = 0.5 }, new[] { matrix }).Loss().item<float>(), 1e-5);
    }

    [TestMethod]
    public void PerRowTermSeesAnOutlierThatThePerTensorTermBarelyNotices()
    {
        // A 256x1024 uniform matrix (U(-1, 1): variance 1/3, mean fourth power 1/5) with one weight a at 14 standard
        // deviations: the tensor's kurtosis barely moves (about 1.94, near the target), its row's is about 27.7, and the
        // gradient on the outlier is about 95 times larger per row (0.021 vs 2.0).
        using var scope = NewDisposeScope();
        using var generator = new Generator(11);
        var w = (torch.rand(new long[] { 256, 1024 }, generator: generator) * 2 - 1).requires_grad_(false);
        w[3, 7] = torch.tensor(14 / Math.Sqrt(3));
        w.requires_grad_();
        (double Loss, double OutlierGradient) Term(bool perRow)
        {
            w.grad?.zero_();
            var loss = new KurtosisRegularizer(new KureOptions { Lambda = 1.0, PerRow = perRow }, new[] { w }).Loss();
            loss.backward();
            return (loss.item<float>(), w.grad![3, 7].item<float>());
        }
        var tensor = Term(perRow: false);
        var rows = Term(perRow: true);
        double a2 = 196.0 / 3, a4 = a2 * a2;
        double Expected(int n) => ((n - 1) / 5.0 + a4) / n / Math.Pow(((n - 1) / 3.0 + a2) / n, 2);
        Assert.AreEqual(1.94, Expected(256 * 1024), 0.01);
        Assert.AreEqual(27.7, Expected(1024), 0.1);
        Assert.AreEqual(Math.Pow(Expected(256 * 1024) - 1.8, 2), tensor.Loss, 0.01, "(tensor kurtosis - 1.8)^2");
        Assert.AreEqual(Math.Pow(Expected(1024) - 1.8, 2) / 256, rows.Loss, 0.1 * rows.Loss, "one row of 256 far from 1.8, the others near it");
        Assert.IsTrue(tensor.OutlierGradient > 0 && rows.OutlierGradient > 50 * tensor.OutlierGradient,
            $"the gradient pulling the outlier in: per tensor {tensor.OutlierGradient:G3}, per row {rows.OutlierGradient:G3}");
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

        // Per row: each row's kurtosis moves, measured as the mean row kurtosis.
        training.Kure = new KureOptions { Lambda = 1, Target = 3.0, PerRow = true };
        using var rows = QuantizedLanguageModel.Train(Chars, Train, null, TinyCorpus.Model(), training);
        double MeanRow(QuantizedLanguageModel m) => m.Network.Recurrent.QuantizedWeights().Average(w => WeightStatistics.Of("w", w.Weight).MeanRowKurtosis);
        double pr = MeanRow(plain), r = MeanRow(rows);
        Assert.IsTrue(r > pr + 0.2, $"mean row kurtosis of the recurrent weights: without KURE {pr:F3}, per row with target 3 {r:F3}");
    }
}
