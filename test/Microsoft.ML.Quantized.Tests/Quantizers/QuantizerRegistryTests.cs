using static Microsoft.ML.Quantized.Tests.Quantizers.QuantizerTestUtil;

namespace Microsoft.ML.Quantized.Tests.Quantizers;

[TestClass]
public sealed class QuantizerRegistryTests
{
    private static QuantizerOptions O(QuantizerKind kind, int bits = 0, bool row = false, bool sr = false, bool pow2 = false, bool lsq = false, double m = 1, bool mse = false) =>
        new() { Kind = kind, Bits = bits, PerRowScale = row, StochasticRounding = sr, PowerOfTwoScale = pow2, LearnedScale = lsq, StepSizeMultiplier = m, MinimumErrorStep = mse };

    [TestMethod]
    public void NameOf_CanonicalNames()
    {
        Assert.AreEqual("none", QuantizerRegistry.NameOf(new QuantizerOptions()));
        Assert.AreEqual("bc", QuantizerRegistry.NameOf(O(QuantizerKind.BinaryConnect, row: true)), "per-row ignored by bc");
        Assert.AreEqual("sbc", QuantizerRegistry.NameOf(O(QuantizerKind.StochasticBinary)));
        Assert.AreEqual("sbc-real", QuantizerRegistry.NameOf(new QuantizerOptions { Kind = QuantizerKind.StochasticBinary, RealValuedEvaluation = true }));
        Assert.AreEqual("bwn-row", QuantizerRegistry.NameOf(O(QuantizerKind.BinaryWeightNet, row: true)));
        Assert.AreEqual("twn", QuantizerRegistry.NameOf(O(QuantizerKind.TernaryWeightNet, bits: 2)));
        Assert.AreEqual("ttq", QuantizerRegistry.NameOf(O(QuantizerKind.ThresholdTernary)));
        Assert.AreEqual("zttq", QuantizerRegistry.NameOf(new QuantizerOptions { Kind = QuantizerKind.TrainedTernary, TernaryThreshold = 0.05 }), "Zhu et al.'s t = 0.05 is the default");
        Assert.AreEqual("zttq-theta0.1-row", QuantizerRegistry.NameOf(QuantizerRegistry.Parse("zttq-row-theta0.1")));
        Assert.AreEqual("alt2", QuantizerRegistry.NameOf(new QuantizerOptions { Kind = QuantizerKind.AlternatingMultiBit }), "alt is per row unless told");
        Assert.AreEqual("alt2-tensor", QuantizerRegistry.NameOf(O(QuantizerKind.AlternatingMultiBit)), "per tensor set explicitly");
        Assert.AreEqual("alt3", QuantizerRegistry.NameOf(O(QuantizerKind.AlternatingMultiBit, 3, row: true)));
        Assert.IsTrue(QuantizerRegistry.Parse("alt2").PerRowScale);
        Assert.IsFalse(QuantizerRegistry.Parse("alt2-tensor").PerRowScale);
        Assert.AreEqual("alt3", QuantizerRegistry.NameOf(QuantizerRegistry.Parse("alt3-row")), "-row is alt's default");
        Assert.AreEqual("uniform4", QuantizerRegistry.NameOf(O(QuantizerKind.Uniform)));
        Assert.AreEqual("uniform4-sr", QuantizerRegistry.NameOf(O(QuantizerKind.Uniform, sr: true)));
        Assert.AreEqual("uniform3-pow2", QuantizerRegistry.NameOf(O(QuantizerKind.Uniform, 3, pow2: true)));
        Assert.AreEqual("uniform2-asym", QuantizerRegistry.NameOf(new QuantizerOptions { Kind = QuantizerKind.Uniform, Bits = 2, AsymmetricLevels = true }));
        Assert.AreEqual("uniform2-sr-asym-lsq-row", QuantizerRegistry.NameOf(QuantizerRegistry.Parse("uniform2-row-lsq-asym-sr")));
        Assert.AreEqual("uniform4-lsq", QuantizerRegistry.NameOf(O(QuantizerKind.Uniform, 4, lsq: true)));
        Assert.AreEqual("uniform4@1.05", QuantizerRegistry.NameOf(O(QuantizerKind.Uniform, m: 1.05)));
        Assert.AreEqual("uniform8-sr-row@0.9", QuantizerRegistry.NameOf(O(QuantizerKind.Uniform, 8, row: true, sr: true, m: 0.9)));
        Assert.AreEqual("btq", QuantizerRegistry.NameOf(O(QuantizerKind.BernoulliTernary)));
        Assert.AreEqual("ttq", QuantizerRegistry.NameOf(new QuantizerOptions { Kind = QuantizerKind.ThresholdTernary, TernaryThreshold = 0.7 }), "the default theta is left out");
        Assert.AreEqual("ttq-theta0.5-row", QuantizerRegistry.NameOf(new QuantizerOptions { Kind = QuantizerKind.ThresholdTernary, TernaryThreshold = 0.5, PerRowScale = true }));
        Assert.AreEqual("ttq-max", QuantizerRegistry.NameOf(new QuantizerOptions { Kind = QuantizerKind.ThresholdTernary, TernaryThreshold = 0.05, TernaryThresholdFromMaximum = true }));
        Assert.AreEqual("ttq-max-theta0.1", QuantizerRegistry.NameOf(new QuantizerOptions { Kind = QuantizerKind.ThresholdTernary, TernaryThreshold = 0.1, TernaryThresholdFromMaximum = true }));
        Assert.AreEqual(0.5, QuantizerRegistry.Parse("ttq-theta0.5").TernaryThreshold);
        Assert.IsTrue(QuantizerRegistry.Parse("ttq-row-max").TernaryThresholdFromMaximum);
        Assert.AreEqual("twn-row", O(QuantizerKind.TernaryWeightNet, row: true).ToString(), "QuantizerOptions.ToString uses the registry");
    }

    [TestMethod]
    public void Parse_NameOf_RoundTrips()
    {
        var configs = new List<QuantizerOptions> { new() };
        foreach (var kind in new[] { QuantizerKind.BinaryConnect, QuantizerKind.StochasticBinary, QuantizerKind.BernoulliTernary })
            configs.Add(O(kind));
        foreach (var kind in new[] { QuantizerKind.BinaryWeightNet, QuantizerKind.TernaryWeightNet, QuantizerKind.ThresholdTernary })
            foreach (var row in new[] { false, true })
                foreach (var m in new[] { 1.0, 1.05, 0.9, 1e-3 })
                    configs.Add(O(kind, row: row, m: m));
        foreach (var theta in new[] { 0.0, 0.3, 0.7, 1.5, 1e-5 })
            foreach (var fromMax in new[] { false, true })
                if (!(fromMax && theta >= 1))
                    configs.Add(new QuantizerOptions { Kind = QuantizerKind.ThresholdTernary, TernaryThreshold = theta, TernaryThresholdFromMaximum = fromMax, PerRowScale = theta == 0.3 });
        for (int bits = 1; bits <= 4; bits++)
            foreach (var row in new[] { false, true })
                configs.Add(O(QuantizerKind.AlternatingMultiBit, bits, row, m: bits == 3 ? 1.1 : 1));
        for (int bits = 2; bits <= 8; bits++)
            foreach (var row in new[] { false, true })
            {
                configs.Add(O(QuantizerKind.Uniform, bits, row));
                configs.Add(O(QuantizerKind.Uniform, bits, row, sr: true));
                configs.Add(O(QuantizerKind.Uniform, bits, row, pow2: true, m: 1.05));
                configs.Add(O(QuantizerKind.Uniform, bits, row, lsq: true, sr: bits % 2 == 0));
                configs.Add(O(QuantizerKind.Uniform, bits, row, sr: true, pow2: true, m: 0.95));
                configs.Add(O(QuantizerKind.Uniform, bits, row, pow2: bits % 2 == 1, lsq: bits % 2 == 0, mse: true));
            }

        Assert.IsGreaterThan(80, configs.Count);
        foreach (var options in configs)
        {
            var name = QuantizerRegistry.NameOf(options);
            var parsed = QuantizerRegistry.Parse(name);
            Assert.AreEqual(name, QuantizerRegistry.NameOf(parsed), name);
            Assert.AreEqual(options.Kind, parsed.Kind, name);
            Assert.AreEqual(QuantizerRegistry.EffectiveBits(options), QuantizerRegistry.EffectiveBits(parsed), name);
            Assert.AreEqual(options.PerRowScale && QuantizerRegistry.HasScale(options.Kind), parsed.PerRowScale, name);
            Assert.AreEqual(options.StochasticRounding, parsed.StochasticRounding, name);
            Assert.AreEqual(options.PowerOfTwoScale, parsed.PowerOfTwoScale, name);
            Assert.AreEqual(options.LearnedScale, parsed.LearnedScale, name);
            Assert.AreEqual(options.MinimumErrorStep, parsed.MinimumErrorStep, name);
            Assert.AreEqual(options.StepSizeMultiplier, parsed.StepSizeMultiplier, 0, name);
            Assert.AreEqual(options.TernaryThresholdFromMaximum, parsed.TernaryThresholdFromMaximum, name);
            if (options.Kind == QuantizerKind.ThresholdTernary)
                Assert.AreEqual(QuantizerRegistry.EffectiveTernaryThreshold(options), QuantizerRegistry.EffectiveTernaryThreshold(parsed), 0, name);
            Assert.AreEqual(name, QuantizerFactory.Create(options).RegistryName, name);
        }
    }

    [TestMethod]
    public void Parse_AcceptsKnownNames_FlagsInAnyOrder_AndCase()
    {
        foreach (var name in QuantizerRegistry.KnownNames)
            Assert.AreEqual(name, QuantizerRegistry.NameOf(QuantizerRegistry.Parse(name)));
        Assert.AreEqual("uniform4-sr-lsq-row".Length, QuantizerRegistry.NameOf(QuantizerRegistry.Parse(" Uniform4-ROW-lsq-sr ")).Length);
        Assert.AreEqual("uniform4-sr-lsq-row", QuantizerRegistry.NameOf(QuantizerRegistry.Parse("uniform4-row-lsq-sr")));
        Assert.AreEqual("uniform3-pow2-mse-row", QuantizerRegistry.NameOf(QuantizerRegistry.Parse("uniform3-row-mse-pow2")));
    }

    [TestMethod]
    public void Parse_RejectsBadNames_NamingTheBadPart()
    {
        void Bad(string name, string part)
        {
            var e = Assert.Throws<ArgumentException>(() => QuantizerRegistry.Parse(name));
            StringAssert.Contains(e.Message, part, $"'{name}'");
        }
        Bad("foo", "'foo'");
        Bad("uniform", "'uniform'");
        Bad("uniform4-xyz", "'-xyz'");
        Bad("uniform4-sr-sr", "'-sr'");
        Bad("uniform4@abc", "'abc'");
        Bad("uniform9", "Bits = 9");
        Bad("alt5", "Bits = 5");
        Bad("bc-row", "'-row'");
        Bad("twn-sr", "StochasticRounding");
        Bad("uniform4-lsq-pow2", "PowerOfTwoScale");
        Bad("twn-mse", "MinimumErrorStep");
        Bad("twn-asym", "AsymmetricLevels");
        Bad("twn-tensor", "'-tensor'");
        Bad("bc-real", "RealValuedEvaluation");
        Bad("twn-fixed", "FixedStep");
        Bad("zttq-max", "TernaryThresholdFromMaximum");
        Bad("zttq-theta1.5", "(0, 1)");
        Bad("uniform4-lsq-fixed", "FixedStep");
        Bad("alt2-row-tensor", "'-tensor'");
        Bad("uniform3-asym-mse", "MinimumErrorStep");
        Bad("uniform4@0", "StepSizeMultiplier = 0");
        Bad("uniform4@-1", "StepSizeMultiplier = -1");
        Bad("bc@1.1", "StepSizeMultiplier = 1.1");
        Bad("none-row", "'none'");
        Bad("twn-theta0.5", "TernaryThreshold = 0.5");
        Bad("twn-max", "TernaryThresholdFromMaximum");
        Bad("ttq-thetax", "'x'");
        Bad("ttq-theta0.5-theta0.6", "'-theta'");
        Bad("ttq-max-theta1.5", "(0, 1)");
        Bad("", "quantizer name");
    }

    [TestMethod]
    public void Validate_RejectsInvalidOptions_NamingOptionValueAndFix()
    {
        void Bad(QuantizerOptions options, params string[] parts)
        {
            var e = Assert.Throws<ArgumentException>(() => QuantizerRegistry.Validate(options, "WeightQuantizer"));
            StringAssert.Contains(e.Message, "WeightQuantizer");
            Assert.AreEqual("WeightQuantizer", e.ParamName);
            foreach (var part in parts) StringAssert.Contains(e.Message, part);
        }
        Bad(O(QuantizerKind.BinaryConnect, 3), "Bits = 3", "BinaryConnect", "0 or 1");
        Bad(O(QuantizerKind.TernaryWeightNet, 1), "Bits = 1", "0 or 2");
        Bad(O(QuantizerKind.Uniform, 1), "Bits = 1", "2-8");
        Bad(O(QuantizerKind.Uniform, 9), "Bits = 9", "2-8");
        Bad(O(QuantizerKind.AlternatingMultiBit, 5), "Bits = 5", "1-4");
        Bad(O(QuantizerKind.AlternatingMultiBit, -1), "Bits = -1");
        Bad(O(QuantizerKind.TernaryWeightNet, sr: true), "StochasticRounding = true", "Uniform");
        Bad(O(QuantizerKind.BinaryWeightNet, pow2: true), "PowerOfTwoScale");
        Bad(O(QuantizerKind.AlternatingMultiBit, lsq: true), "LearnedScale");
        Bad(O(QuantizerKind.Uniform, lsq: true, pow2: true), "LearnedScale", "PowerOfTwoScale");
        Bad(O(QuantizerKind.Uniform, m: 0), "StepSizeMultiplier = 0", "> 0");
        Bad(O(QuantizerKind.Uniform, m: -0.5), "StepSizeMultiplier = -0.5");
        Bad(O(QuantizerKind.Uniform, m: double.NaN), "StepSizeMultiplier = NaN");
        Bad(O(QuantizerKind.Uniform, m: double.PositiveInfinity), "StepSizeMultiplier");
        Bad(O(QuantizerKind.BinaryConnect, m: 2), "StepSizeMultiplier = 2", "no scale");
        Bad(O(QuantizerKind.BernoulliTernary), "BernoulliTernary", "activations", "twn");
        Bad(O((QuantizerKind)99), "99");
        Assert.ThrowsExactly<ArgumentNullException>(() => QuantizerRegistry.Validate(null!, "WeightQuantizer"));

        // Valid weight configurations pass.
        foreach (var name in new[] { "none", "bc", "sbc", "bwn-row", "twn", "ttq", "alt4-row", "uniform8-sr", "uniform2-pow2", "uniform4-lsq-row" })
            QuantizerRegistry.Validate(QuantizerRegistry.Parse(name), "WeightQuantizer");
    }

    [TestMethod]
    public void ValidateActivation_AllowsOnlyNoneBtqUniform()
    {
        foreach (var name in new[] { "none", "btq", "uniform2", "uniform4-sr", "uniform4-lsq", "uniform3-pow2", "uniform4-lsq-mse" })
            QuantizerRegistry.ValidateActivation(QuantizerRegistry.Parse(name), "ActivationQuantizer");
        foreach (var name in new[] { "bc", "sbc", "bwn", "twn", "ttq", "alt2" })
        {
            var e = Assert.ThrowsExactly<ArgumentException>(() => QuantizerRegistry.ValidateActivation(QuantizerRegistry.Parse(name), "ActivationQuantizer"));
            StringAssert.Contains(e.Message, "ActivationQuantizer");
            StringAssert.Contains(e.Message, name);
        }
        var lsqRow = Assert.ThrowsExactly<ArgumentException>(() =>
            QuantizerRegistry.ValidateActivation(QuantizerRegistry.Parse("uniform4-lsq-row"), "ActivationQuantizer"));
        StringAssert.Contains(lsqRow.Message, "PerRowScale");
        var mse = Assert.ThrowsExactly<ArgumentException>(() =>
            QuantizerRegistry.ValidateActivation(QuantizerRegistry.Parse("uniform4-mse"), "ActivationQuantizer"));
        StringAssert.Contains(mse.Message, "MinimumErrorStep");
        StringAssert.Contains(mse.Message, "uniform4-lsq-mse");
        var asym = Assert.ThrowsExactly<ArgumentException>(() =>
            QuantizerRegistry.ValidateActivation(QuantizerRegistry.Parse("uniform2-asym"), "ActivationQuantizer"));
        StringAssert.Contains(asym.Message, "ActivationQuantizer.AsymmetricLevels");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() =>
            QuantizerRegistry.ValidateActivation(QuantizerRegistry.Parse("uniform4-fixed"), "ActivationQuantizer")).Message, "ActivationQuantizer.FixedStep");
    }

    [TestMethod]
    public void Create_ReturnsTheMethod_AndValidates()
    {
        Assert.IsInstanceOfType<IdentityQuantizer>(Create("none"));
        Assert.IsInstanceOfType<BinaryConnectQuantizer>(Create("bc"));
        Assert.IsInstanceOfType<StochasticBinaryQuantizer>(Create("sbc"));
        Assert.IsInstanceOfType<BinaryWeightNetQuantizer>(Create("bwn"));
        Assert.IsInstanceOfType<TernaryWeightNetQuantizer>(Create("twn"));
        Assert.IsInstanceOfType<ThresholdTernaryQuantizer>(Create("ttq"));
        Assert.IsInstanceOfType<AlternatingMultiBitQuantizer>(Create("alt3"));
        Assert.IsInstanceOfType<UniformQuantizer>(Create("uniform5-sr"));
        Assert.IsInstanceOfType<BernoulliTernaryQuantizer>(Create("btq"));
        Assert.AreEqual(3, Create("alt3").Bits);
        Assert.AreEqual(2, QuantizerFactory.Create(new QuantizerOptions { Kind = QuantizerKind.AlternatingMultiBit }).Bits);
        Assert.AreEqual(4, QuantizerFactory.Create(new QuantizerOptions { Kind = QuantizerKind.Uniform }).Bits);
        Assert.AreEqual(2, Create("twn").Bits);
        Assert.AreEqual(1, Create("bwn").Bits);
        Assert.IsTrue(Create("none").IsIdentity);
        Assert.IsFalse(Create("bc").IsIdentity);
        Assert.Throws<ArgumentException>(() => QuantizerFactory.Create(new QuantizerOptions { Kind = QuantizerKind.BinaryConnect, Bits = 3 }));
    }
}
