using System.Text.Json;
using System.Text.Json.Nodes;
using TorchSharp;
using static Microsoft.ML.Quantized.Tests.Quantizers.QuantizerTestUtil;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized.Tests.Quantizers;

[TestClass]
public sealed class TernaryQuantizerTests
{
    [TestMethod]
    public void TernaryWeightNet_ThresholdAndScale_PerTensor()
    {
        using var scope = torch.NewDisposeScope();
        // mean |w| = 3.0 / 6 = 0.5, delta = 0.35; kept 0.9, 0.5, 1.3 -> alpha = 0.9.
        var w = Matrix(1, 6, 0.1f, -0.9f, 0.5f, -0.2f, 1.3f, 0f);
        var c = Matrix(1, 6, 1, 2, 3, 4, 5, 6);
        var (q, grad) = ForwardBackward(new TernaryWeightNetQuantizer(), w, c);
        AreClose(new float[] { 0, -0.9f, 0.9f, 0, 0.9f, 0 }, q);
        AreClose(new float[] { 1, 2, 3, 4, 5, 6 }, grad, 0, "identity straight-through");
        var encoded = new TernaryWeightNetQuantizer().Encode(w);
        AreClose(new float[] { 0.9f }, encoded.Scales);
        Assert.AreEqual(2, encoded.Bits);
    }

    [TestMethod]
    public void TernaryWeightNet_PerRow()
    {
        using var scope = torch.NewDisposeScope();
        // Row 0: mean 0.5, delta 0.35, kept 0.9, 0.5 -> alpha 0.7. Row 1: mean 0.5, kept 1.3 -> alpha 1.3.
        var w = Matrix(2, 3, 0.1f, -0.9f, 0.5f, -0.2f, 1.3f, 0f);
        var q = new TernaryWeightNetQuantizer(perRow: true).forward(w);
        AreClose(new float[] { 0, -0.7f, 0.7f, 0, 1.3f, 0 }, q);
        var encoded = new TernaryWeightNetQuantizer(perRow: true).Encode(w);
        AreClose(new float[] { 0.7f, 1.3f }, encoded.Scales);
    }

    [TestMethod]
    public void ThresholdTernary_HitNetRule_ThresholdIsThetaTimesMeanMagnitude()
    {
        using var scope = torch.NewDisposeScope();
        // HitNet's TTQ: delta = theta * E|w|, alpha = mean |w_i| over |w_i| > delta. E|w| = 3.0 / 6 = 0.5.
        var w = Matrix(2, 3, 0.1f, -0.9f, 0.5f, -0.2f, 1.3f, 0f);
        // Default theta 0.7: delta = 0.35, kept -0.9, 0.5, 1.3 -> alpha = 2.7 / 3 = 0.9 (TWN's rule at TWN's theta).
        var ttq = new ThresholdTernaryQuantizer();
        Assert.AreEqual(0.7, ttq.Theta);
        AreClose(new float[] { 0, -0.9f, 0.9f, 0, 0.9f, 0 }, ttq.forward(w));
        // theta 0.3: delta = 0.15, kept -0.9, 0.5, -0.2, 1.3 -> alpha = 2.9 / 4 = 0.725.
        AreClose(new float[] { 0, -0.725f, 0.725f, -0.725f, 0.725f, 0 }, new ThresholdTernaryQuantizer(theta: 0.3).forward(w));
        // theta 1.5 (above 1 is valid for the mean form): delta = 0.75, kept -0.9, 1.3 -> alpha = 1.1.
        AreClose(new float[] { 0, -1.1f, 0, 0, 1.1f, 0 }, new ThresholdTernaryQuantizer(theta: 1.5).forward(w));
        // Per row, theta 0.3: both rows have E|w| = 0.5, delta 0.15; row 0 keeps -0.9, 0.5 -> 0.7; row 1 keeps -0.2, 1.3 -> 0.75.
        var perRow = new ThresholdTernaryQuantizer(perRow: true, theta: 0.3);
        AreClose(new float[] { 0, -0.7f, 0.7f, -0.75f, 0.75f, 0 }, perRow.forward(w));
        var encoded = perRow.Encode(w);
        AreClose(new float[] { 0.7f, 0.75f }, encoded.Scales);
        Assert.AreEqual("ttq-theta0.3-row", perRow.RegistryName);
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new ThresholdTernaryQuantizer(theta: -0.1));
    }

    [TestMethod]
    public void ThresholdTernary_MaximumForm_ThresholdIsFractionOfMax()
    {
        using var scope = torch.NewDisposeScope();
        var w = Matrix(2, 3, 0.005f, -0.04f, 0.2f, -1.0f, 0.06f, 0.5f);
        // Per tensor: max 1, delta = 0.05: kept 0.2, -1, 0.06, 0.5 -> alpha = 1.76 / 4 = 0.44.
        var max = new ThresholdTernaryQuantizer(fromMaximum: true);
        Assert.AreEqual(0.05, max.Theta);
        Assert.AreEqual("ttq-max", max.RegistryName);
        AreClose(new float[] { 0, 0, 0.44f, -0.44f, 0.44f, 0.44f }, max.forward(w));
        // Per row: row 0 max 0.2, delta 0.01: kept -0.04, 0.2 -> 0.12; row 1 delta 0.05: kept all -> 1.56 / 3 = 0.52.
        AreClose(new float[] { 0, -0.12f, 0.12f, -0.52f, 0.52f, 0.52f }, new ThresholdTernaryQuantizer(perRow: true, fromMaximum: true).forward(w));
        // Another theta: delta = 0.3 -> kept -1, 0.5 -> alpha 0.75.
        AreClose(new float[] { 0, 0, 0, -0.75f, 0, 0.75f }, new ThresholdTernaryQuantizer(theta: 0.3, fromMaximum: true).forward(w));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new ThresholdTernaryQuantizer(theta: 1.5, fromMaximum: true));
    }

    [TestMethod]
    public void ThresholdTernary_OptionsSavedBeforeTheRuleWasNamed_LoadWithTheMaximumForm()
    {
        // A model header written before TernaryThreshold/TernaryThresholdFromMaximum existed: its ttq was theta * max|w|.
        var options = new LanguageModelOptions();
        options.Recurrent.WeightQuantizer = new QuantizerOptions { Kind = QuantizerKind.ThresholdTernary, PerRowScale = true };
        options.Recurrent.ActivationQuantizer = new QuantizerOptions { Kind = QuantizerKind.BernoulliTernary };
        var json = JsonNode.Parse(JsonSerializer.Serialize(options, ModelFile.HeaderJson))!;
        foreach (var name in new[] { "WeightQuantizer", "ActivationQuantizer" })
        {
            var quantizer = json["Recurrent"]![name]!.AsObject();
            Assert.IsTrue(quantizer.Remove(nameof(QuantizerOptions.TernaryThreshold)) && quantizer.Remove(nameof(QuantizerOptions.TernaryThresholdFromMaximum)));
        }
        var old = JsonSerializer.Deserialize<LanguageModelOptions>(json.ToJsonString(), ModelFile.HeaderJson)!;
        Assert.IsTrue(old.Recurrent.WeightQuantizer.TernaryThresholdFromMaximum, "an old ttq keeps the rule it was trained with");
        Assert.AreEqual("ttq-max-row", old.Recurrent.WeightQuantizer.ToString());
        Assert.IsFalse(old.Recurrent.ActivationQuantizer.TernaryThresholdFromMaximum, "other kinds never had a threshold rule");

        // A header written now names the rule, so it reads back as written.
        var now = JsonSerializer.Deserialize<LanguageModelOptions>(JsonSerializer.Serialize(options, ModelFile.HeaderJson), ModelFile.HeaderJson)!;
        Assert.IsFalse(now.Recurrent.WeightQuantizer.TernaryThresholdFromMaximum);
        Assert.AreEqual("ttq-row", now.Recurrent.WeightQuantizer.ToString());
    }

    [TestMethod]
    public void ThresholdTernary_IdentityStraightThrough_AndAllZeroInput()
    {
        using var scope = torch.NewDisposeScope();
        var c = Matrix(1, 3, 1, 2, 3);
        var (_, grad) = ForwardBackward(new ThresholdTernaryQuantizer(), Matrix(1, 3, 0.001f, -2f, 5f), c);
        AreClose(new float[] { 1, 2, 3 }, grad, 0);
        // All zeros: nothing kept, alpha 0, no NaN.
        AreClose(new float[] { 0, 0, 0 }, new TernaryWeightNetQuantizer().forward(torch.zeros(1, 3)), 0);
        AreClose(new float[] { 0, 0, 0 }, new ThresholdTernaryQuantizer().forward(torch.zeros(1, 3)), 0);
    }

    [TestMethod]
    public void BernoulliTernary_EvalRule_AndClippedIdentityGradient()
    {
        using var scope = torch.NewDisposeScope();
        var quantizer = new BernoulliTernaryQuantizer();
        quantizer.eval();
        var x = torch.tensor(new float[] { -0.9f, -0.5f, -0.2f, 0f, 0.3f, 0.51f, 1.4f });
        AreClose(new float[] { -1, 0, 0, 0, 0, 1, 1 }, quantizer.forward(x), 0, "1-D activations, eval rule sign(x) 1{|x| > 0.5}");

        torch.manual_seed(3);
        var (q, grad) = ForwardBackward(quantizer, Matrix(1, 4, 0.3f, -0.6f, 1.4f, -2f), Matrix(1, 4, 1, 2, 3, 4));
        AreClose(new float[] { 1, 2, 0, 0 }, grad, 0, "identity inside [-1, 1]");
        Assert.AreEqual(1f, q[2]);
        Assert.AreEqual(-1f, q[3]);
    }

    [TestMethod]
    public void BernoulliTernary_TrainingIsTernaryAndUnbiased()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(99);
        var quantizer = new BernoulliTernaryQuantizer();
        quantizer.train();
        var pattern = new float[] { -0.8f, -0.3f, 0f, 0.4f, 0.9f };
        var x = torch.tensor(pattern).repeat(20000, 1);
        var q = quantizer.forward(x);
        Assert.IsTrue((q.abs() <= 1).logical_and(q == q.round()).all().item<bool>(), "values in {-1, 0, 1}");
        AreClose(pattern, q.mean(new long[] { 0 }), 0.03, "E[q] = x");
        Assert.ThrowsExactly<ArgumentException>(() => quantizer.Encode(torch.tensor(pattern)));
    }

    [TestMethod]
    public void BernoulliTernary_SpanFormEqualsForward()
    {
        // Evaluation by hand: sign(x) 1{|x| > 0.5}, straight-through factor 1{|x| <= 1}.
        var values = new double[] { -1.5, -0.7, -0.5, 0.2, 0.6, 1.0, 1.2 };
        var factors = new double[values.Length];
        var quantizer = new BernoulliTernaryQuantizer();
        quantizer.eval();
        quantizer.Quantize<double>(values, factors, 1, values.Length, ScalarType.Float64, CPU);
        CollectionAssert.AreEqual(new double[] { -1, -1, 0, 0, 1, 1, 1 }, values);
        CollectionAssert.AreEqual(new double[] { 0, 1, 1, 1, 1, 1, 0 }, factors);

        // Training: the same draws as forward on a [rows, width] tensor from the same generator state, value for value.
        using var scope = torch.NewDisposeScope();
        quantizer.train();
        var x = torch.rand(3, 50, ScalarType.Float32) * 3 - 1.5;
        using var random = TrainingRandom.Use(17);
        var expected = quantizer.forward(x).data<float>().ToArray();
        TrainingRandom.Reseed(17);
        var spanValues = x.data<float>().ToArray();
        var spanFactors = new float[spanValues.Length];
        quantizer.Quantize<float>(spanValues, spanFactors, 3, 50, ScalarType.Float32, CPU);
        CollectionAssert.AreEqual(expected, spanValues);
        Assert.IsTrue(expected.Count(v => v == 0) > 10 && expected.Count(v => v == 1) > 10 && expected.Count(v => v == -1) > 10, "all three levels drawn");
        var inside = x.data<float>().ToArray().Select(v => Math.Abs(v) <= 1 ? 1f : 0f).ToArray();
        CollectionAssert.AreEqual(inside, spanFactors);
    }
}
