using Microsoft.ML.Quantized.Sweep;

namespace Microsoft.ML.Quantized.Tests.Sweep;

[TestClass]
public sealed class QuantizationSearchSpaceTests
{
    private static readonly HashSet<string> ValidWeightPairs = new()
    {
        "bc", "sbc", "bwn", "twn", "ttq", "alt2", "alt3", "uniform2", "uniform3", "uniform4", "uniform5", "uniform6", "uniform7", "uniform8",
    };

    [TestMethod]
    public void RandomSamplesRespectRangesAndValidPairsOnly()
    {
        var space = new QuantizationSearchSpace();
        space.Validate();
        var random = new Random(5);
        var seenWeights = new HashSet<string>();
        for (int i = 0; i < 5000; i++)
        {
            var c = RandomTuner.Sample(space, random);
            Assert.IsTrue(ValidWeightPairs.Contains(c.WeightQuantizer.Name), c.Key);
            seenWeights.Add(c.WeightQuantizer.Name);
            QuantizerRegistry.Validate(c.WeightQuantizer.ToOptions(), "weights");
            QuantizerRegistry.ValidateActivation(c.ActivationQuantizer.ToOptions(), "activations");
            CollectionAssert.Contains(new[] { "none", "btq", "uniform4" }, c.ActivationQuantizer.Name);
            Assert.IsTrue(c.ActivationSlope >= 0.25 && c.ActivationSlope <= 1.0, c.Key);
            Assert.IsTrue(c.LearningRate >= 1e-3 && c.LearningRate <= 3e-2, c.Key);
            CollectionAssert.Contains(new[] { 64, 128, 256 }, c.HiddenSize);
            Assert.IsTrue(space.Contains(c), c.Key);
            c.Validate("sample");
        }
        Assert.AreEqual(ValidWeightPairs.Count, seenWeights.Count, "every weight choice should be sampled");
    }

    [TestMethod]
    public void LogScaleIntegerRangeSamplesIntegersLogUniformly()
    {
        var space = new QuantizationSearchSpace { HiddenSizeRange = SearchRange.Log(32, 512) };
        space.Validate();
        var random = new Random(1);
        var sizes = Enumerable.Range(0, 4000).Select(_ => RandomTuner.Sample(space, random).HiddenSize).ToArray();
        Assert.IsTrue(sizes.All(h => h >= 32 && h <= 512));
        double belowGeometricMiddle = sizes.Count(h => h < 128) / (double)sizes.Length;
        Assert.AreEqual(0.5, belowGeometricMiddle, 0.05, "log-uniform: half the samples below sqrt(32 * 512) = 128");
    }

    [TestMethod]
    public void InvalidPairsCannotBeCreated()
    {
        Assert.ThrowsExactly<ArgumentException>(() => new QuantizerChoice(QuantizerKind.BinaryConnect, 2));
        Assert.ThrowsExactly<ArgumentException>(() => new QuantizerChoice(QuantizerKind.TernaryWeightNet, 3));
        Assert.ThrowsExactly<ArgumentException>(() => QuantizerChoice.Uniform(9));
        Assert.ThrowsExactly<ArgumentException>(() => QuantizerChoice.Alternating(5));
        Assert.ThrowsExactly<ArgumentException>(() => new QuantizerChoice(QuantizerKind.BinaryConnect, powerOfTwoScale: true));
        var row = Assert.ThrowsExactly<ArgumentException>(() => QuantizerChoice.Parse("twn-row"));
        StringAssert.Contains(row.Message, "-row");
        foreach (var unsearched in new[] { "uniform2-asym", "uniform4-fixed", "sbc-real", "ttq-theta0.5", "alt2-tensor" })
            Assert.ThrowsExactly<ArgumentException>(() => QuantizerChoice.Parse(unsearched), $"{unsearched} would lose its flag as a choice");
        Assert.AreEqual("alt2", QuantizerChoice.Parse("alt2").ToString(), "alt's default per-row grouping is the choice's");
        Assert.AreEqual(QuantizerChoice.Uniform(3, powerOfTwoScale: true), QuantizerChoice.Parse("uniform3-pow2"));
        var leastError = QuantizerChoice.Parse("uniform3-mse");
        Assert.AreEqual(QuantizerChoice.Uniform(3, minimumErrorStep: true), leastError);
        Assert.IsTrue(leastError.ToOptions().MinimumErrorStep);
        Assert.AreEqual("uniform3-pow2-mse", QuantizerChoice.Uniform(3, powerOfTwoScale: true, minimumErrorStep: true).Name);
        var mse = Assert.ThrowsExactly<ArgumentException>(() => new QuantizerChoice(QuantizerKind.TernaryWeightNet, minimumErrorStep: true));
        StringAssert.Contains(mse.Message, "MinimumErrorStep");
        Assert.AreEqual(QuantizerChoice.Uniform(4), new QuantizerChoice(QuantizerKind.Uniform), "bits 0 = the method's own width");
    }

    [TestMethod]
    public void RolesAndEmptyListsAreCheckedNamingTheProperty()
    {
        var weights = Assert.ThrowsExactly<ArgumentException>(() =>
            new QuantizationExperiment().SetSearchSpace(new QuantizationSearchSpace { WeightQuantizers = [QuantizerChoice.TernaryWeightNet, QuantizerChoice.BernoulliTernary] }));
        StringAssert.Contains(weights.Message, "WeightQuantizers[1]");
        var activations = Assert.ThrowsExactly<ArgumentException>(() =>
            new QuantizationExperiment().SetSearchSpace(new QuantizationSearchSpace { ActivationQuantizers = [QuantizerChoice.BinaryConnect] }));
        StringAssert.Contains(activations.Message, "ActivationQuantizers[0]");
        var empty = Assert.ThrowsExactly<ArgumentException>(() => new QuantizationExperiment().SetSearchSpace(new QuantizationSearchSpace { Cells = [] }));
        StringAssert.Contains(empty.Message, "Cells");
        var slope = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() =>
            new QuantizationExperiment().SetSearchSpace(new QuantizationSearchSpace { ActivationSlope = new SearchRange(0, 1) }));
        StringAssert.Contains(slope.Message, "ActivationSlope");
        var log = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() =>
            new QuantizationExperiment().SetSearchSpace(new QuantizationSearchSpace { HiddenSizeRange = new SearchRange(64, 32) }));
        StringAssert.Contains(log.Message, "HiddenSizeRange");
    }

    [TestMethod]
    public void GridSizeIsTheProductOfTheAxes()
    {
        Assert.AreEqual(432, SyntheticObjective.SmallSpace().GridSize());
        Assert.AreEqual(3 * 1 * 5 * 2 * 2 * 2 * 5 * 2, SyntheticObjective.SmallSpace().GridSize(pointsPerRange: 5));
        // Default: 14 weights, 3 activations, 3 slopes, 5 normalizations, 2 cells, 3 hidden sizes, 3 learning rates, 2 KURE.
        Assert.AreEqual(14L * 3 * 3 * 5 * 2 * 3 * 3 * 2, new QuantizationSearchSpace().GridSize());
        Assert.AreEqual(21, QuantizationSearchSpace.AllWeightQuantizers(includePowerOfTwo: true).Count);
    }

    [TestMethod]
    public void ConfigurationRoundTripsThroughJsonAndMapsToOptions()
    {
        var c = new QuantizationConfiguration
        {
            WeightQuantizer = QuantizerChoice.Uniform(3, powerOfTwoScale: true),
            ActivationQuantizer = QuantizerChoice.BernoulliTernary,
            ActivationSlope = 0.55,
            Normalization = RecurrentNormalization.BatchPerStep,
            Cell = RecurrentCellKind.Gru,
            HiddenSize = 96,
            LearningRate = 0.00316,
            UseKure = true,
        };
        var json = c.ToJson();
        StringAssert.Contains(json, "\"uniform3-pow2\"");
        var back = QuantizationConfiguration.FromJson(json);
        Assert.AreEqual(c, back);
        Assert.AreEqual(c.Key, back.Key);
        Assert.AreEqual("cell=gru;hidden=96;w=uniform3-pow2;a=btq;slope=0.55;norm=batchperstep;lr=0.00316;kure=true", c.Key);

        var template = new QuantizedRecurrentOptions { Layers = 2, Dropout = 0.25 };
        var options = c.ToRecurrentOptions(template);
        Assert.AreEqual(2, options.Layers);
        Assert.AreEqual(0.25, options.Dropout);
        Assert.AreEqual(RecurrentCellKind.Gru, options.Cell);
        Assert.AreEqual(96, options.HiddenSize);
        Assert.AreEqual("uniform3-pow2", QuantizerRegistry.NameOf(options.WeightQuantizer));
        Assert.AreEqual(QuantizerKind.BernoulliTernary, options.ActivationQuantizer.Kind);
        Assert.AreEqual(0.55, options.Slopes.ForgetGate);
        Assert.AreEqual(0.55, options.Slopes.CellOutput);
        Assert.AreEqual(RecurrentNormalization.BatchPerStep, options.Normalization);
        Assert.AreEqual(256, template.HiddenSize, "the template is not changed");
        Assert.AreEqual(0.00316, c.ToTrainingOptions(new TrainingOptions { Epochs = 3 }).LearningRate);

        var bad = Assert.ThrowsExactly<ArgumentException>(() => QuantizationConfiguration.FromJson(json.Replace("\"uniform3-pow2\"", "\"btq\"")));
        StringAssert.Contains(bad.Message, "BernoulliTernary");
    }
}
