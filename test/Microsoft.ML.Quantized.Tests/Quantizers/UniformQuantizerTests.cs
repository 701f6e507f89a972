using TorchSharp;
using static Microsoft.ML.Quantized.Tests.Quantizers.QuantizerTestUtil;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized.Tests.Quantizers;

[TestClass]
public sealed class UniformQuantizerTests
{
    private static UniformQuantizer Uniform(int bits, bool perRow = false, bool sr = false, bool pow2 = false, bool lsq = false, double multiplier = 1, bool mse = false) =>
        new(new QuantizerOptions
        {
            Kind = QuantizerKind.Uniform, Bits = bits, PerRowScale = perRow, StochasticRounding = sr,
            PowerOfTwoScale = pow2, LearnedScale = lsq, StepSizeMultiplier = multiplier, MinimumErrorStep = mse,
        });

    [TestMethod]
    public void ThreeBits_StepIsMaxOverThree_RoundHalfToEven()
    {
        using var scope = torch.NewDisposeScope();
        // Qp = 3, s = 1.5 / 3 = 0.5; w / s = 3, -1.5, 0.5, -3 -> 3, -2, 0, -3.
        var w = Matrix(1, 4, 1.5f, -0.75f, 0.25f, -1.5f);
        var (q, grad) = ForwardBackward(Uniform(3), w, Matrix(1, 4, 1, 2, 3, 4));
        AreClose(new float[] { 1.5f, -1f, 0f, -1.5f }, q, 0);
        AreClose(new float[] { 1, 2, 3, 4 }, grad, 0, "nothing clipped at multiplier 1");
        var encoded = Uniform(3).Encode(w);
        Assert.AreEqual(CodeLayout.SignedInteger, encoded.Layout);
        AreClose(new float[] { 0.5f }, encoded.Scales, 0);
        CollectionAssert.AreEqual(new[] { 3, 6, 0, 5 }, encoded.Codes, "3-bit two's complement of 3, -2, 0, -3");
        Assert.AreEqual(7, Uniform(4).MaxLevel);
    }

    /// <summary>
    /// The asymmetric 2-bit grid: 4 levels (codes -2..1), step max|w| / 2; uniform2 keeps its 3 symmetric levels (codes
    /// -1..1), step max|w| / 1.
    /// </summary>
    [TestMethod]
    public void AsymmetricTwoBits_HasFourLevels_StepMaxOverTwo()
    {
        using var scope = torch.NewDisposeScope();
        var w = Matrix(1, 5, -1f, -0.6f, -0.2f, 0.3f, 0.8f);
        var asym = QuantizerRegistry.Parse("uniform2-asym");
        // s = 0.5; w / s = -2, -1.2, -0.4, 0.6, 1.6 -> -2, -1, 0, 1, 1 (1.6 clamps to Qp = 1); clip range [-1, 0.5].
        var (q, grad) = ForwardBackward(new UniformQuantizer(asym), w, Matrix(1, 5, 1, 2, 3, 4, 5));
        AreClose(new float[] { -1f, -0.5f, 0f, 0.5f, 0.5f }, q, 0);
        AreClose(new float[] { 1, 2, 3, 4, 0 }, grad, 0, "gradient 1 inside [-2 s, s], lower boundary included; 0 above s");
        var encoded = new UniformQuantizer(asym).Encode(w);
        AreClose(new float[] { 0.5f }, encoded.Scales, 0);
        CollectionAssert.AreEqual(new[] { 2, 3, 0, 1, 1 }, encoded.Codes, "2-bit two's complement of -2, -1, 0, 1, 1");
        AreClose(new float[] { -1f, -0.5f, 0f, 0.5f, 0.5f }, PackedMatrix.FromQuantizedWeights(encoded).Decode(), 0, "the packed matrix stores code -2");

        // uniform2: s = 1; w / s rounds to -1, -1, 0, 0, 1.
        AreClose(new float[] { -1f, -1f, 0f, 0f, 1f }, new UniformQuantizer(QuantizerRegistry.Parse("uniform2")).forward(w), 0);
        // A learned step starts at max|w| / 2 too.
        var lsq = new UniformQuantizer(QuantizerRegistry.Parse("uniform2-asym-lsq"));
        AreClose(new float[] { -1f, -0.5f, 0f, 0.5f, 0.5f }, lsq.forward(w), 0);
        AreClose(new float[] { 0.5f }, lsq.Step!, 0);
    }

    [TestMethod]
    public void PerRowSteps()
    {
        using var scope = torch.NewDisposeScope();
        // Row 0: s = 0.5 as above. Row 1: s = 0.3 / 3 = 0.1; 0.14 / 0.1 = 1.4 -> 1.
        var w = Matrix(2, 2, 1.5f, -0.75f, 0.3f, 0.14f);
        AreClose(new float[] { 1.5f, -1f, 0.3f, 0.1f }, Uniform(3, perRow: true).forward(w), 1e-6);
        AreClose(new float[] { 0.5f, 0.1f }, Uniform(3, perRow: true).Encode(w).Scales, 1e-7);
    }

    [TestMethod]
    public void StepSizeMultiplier_ChangesStep_AndClipsGradient()
    {
        using var scope = torch.NewDisposeScope();
        // s = 0.5 * 0.5 = 0.25; w / s = 6, -3, 1, -6 -> clamp to +-3; clip range +-0.75.
        var w = Matrix(1, 4, 1.5f, -0.75f, 0.25f, -1.5f);
        var (q, grad) = ForwardBackward(Uniform(3, multiplier: 0.5), w, Matrix(1, 4, 1, 2, 3, 4));
        AreClose(new float[] { 0.75f, -0.75f, 0.25f, -0.75f }, q, 0);
        AreClose(new float[] { 0, 2, 3, 0 }, grad, 0, "zero gradient outside the clip range, boundary included");
        AreClose(new float[] { 0.25f }, Uniform(3, multiplier: 0.5).Encode(w).Scales, 0);
        AreClose(new float[] { 0.525f }, Uniform(3, multiplier: 1.05).Encode(w).Scales, 1e-7);
    }

    [TestMethod]
    public void PowerOfTwoStep_RoundsUp_SoNothingClips()
    {
        using var scope = torch.NewDisposeScope();
        // s = 1.2 / 3 = 0.4 -> 0.5; w / s = 2.4, -1, 0.6 -> 2, -1, 1.
        var w = Matrix(1, 3, 1.2f, -0.5f, 0.3f);
        AreClose(new float[] { 1f, -0.5f, 0.5f }, Uniform(3, pow2: true).forward(w), 0);

        torch.manual_seed(5);
        var r = torch.randn(8, 16) * 0.37;
        foreach (var perRow in new[] { false, true })
        {
            var encoded = Uniform(4, perRow: perRow, pow2: true).Encode(r);
            foreach (var s in encoded.Scales)
            {
                var log = Math.Log2(s);
                Assert.AreEqual(Math.Round(log), log, 0, $"step {s} is a power of two");
            }
            var rowMax = Values(r.abs().amax(new long[] { 1 }));
            for (int row = 0; row < rowMax.Length; row++)
            {
                var groupMax = perRow ? rowMax[row] : rowMax.Max();
                var s = encoded.Scales[perRow ? row : 0];
                Assert.IsGreaterThanOrEqualTo(groupMax, s * 7, "the range covers max |w|: nothing clips");
                Assert.IsLessThan(2 * groupMax, s * 7, "the smallest such power of two");
            }
        }
        // The multiplier applies before the rounding: 0.4 * 1.3 = 0.52 -> 1.
        AreClose(new float[] { 1f }, Uniform(3, pow2: true, multiplier: 1.3).Encode(w).Scales, 0);
    }

    [TestMethod]
    public void MinimumErrorStep_ClipsAnOutlier_HandComputed()
    {
        using var scope = torch.NewDisposeScope();
        // 2 bits (levels -s, 0, s): twenty 1s and one 3. The max step 3 rounds every 1 to 0: error 20. Any step in
        // (2/3, 2) codes all values 1: error 20 (s - 1)^2 + (3 - s)^2, least at s = 46/42 = 1.0952 (error 3.8095).
        var w = torch.tensor(Enumerable.Repeat(1f, 20).Append(3f).ToArray()).reshape(1, 21);
        var step = Uniform(2, mse: true).Encode(w).Scales[0];
        Assert.AreEqual(46.0 / 42.0, step, 3.0 / 512, "the search's resolution is max / 512");
        var q = Uniform(2, mse: true).forward(w);
        Assert.AreEqual(3.8095, q.sub(w).pow(2).sum().item<float>(), 0.002);
        AreClose(new float[] { 3f }, Uniform(2).Encode(w).Scales, 0, "without the flag the step stays max |w| / Qp");

        // With a power-of-two step the neighbour with the smaller error: 1 (error (3 - 1)^2 = 4), not 2 (error 20 + 1 = 21);
        // the max rule rounds 3 up to 4 (error 20 + 1 = 21).
        AreClose(new float[] { 1f }, Uniform(2, pow2: true, mse: true).Encode(w).Scales, 0);
        AreClose(new float[] { 4f }, Uniform(2, pow2: true).Encode(w).Scales, 0);
        // The multiplier scales the chosen step; a learned step starts from it.
        Assert.AreEqual(step * 1.05, Uniform(2, mse: true, multiplier: 1.05).Encode(w).Scales[0], 1e-6);
        Assert.AreEqual(step, Uniform(2, lsq: true, mse: true).Encode(w).Scales[0], 1e-7);

        // One instance reuses its search for unchanged values and searches again when they change in place.
        var quantizer = Uniform(2, mse: true);
        Assert.AreEqual(step, quantizer.Encode(w).Scales[0], 0);
        Assert.AreEqual(step, quantizer.Encode(w).Scales[0], 0);
        using (torch.no_grad()) w.mul_(2);
        Assert.AreEqual(2 * step, quantizer.Encode(w).Scales[0], 1e-6);
    }

    [TestMethod]
    public void MinimumErrorStep_MatchesABruteForceSearch_AndNeverLosesToTheMaxStep()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(3);
        // Gaussian rows with one large outlier each: the max step wastes most levels on the outlier.
        var w = torch.randn(6, 200);
        w[torch.TensorIndex.Colon, 0] = torch.tensor(new float[] { 12f, -9f, 6f, 15f, -4f, 3f });
        foreach (var bits in new[] { 2, 3, 4, 6 })
            foreach (var perRow in new[] { false, true })
            {
                var qp = (1 << (bits - 1)) - 1;
                var rows = Values(w).Chunk(200).ToArray();
                var groups = perRow ? rows : new[] { rows.SelectMany(r => r).ToArray() };
                var steps = Uniform(bits, perRow, mse: true).Encode(w).Scales;
                for (int i = 0; i < groups.Length; i++)
                {
                    var max = groups[i].Max(Math.Abs) / qp;
                    double Error(double s) => groups[i].Sum(x => Math.Pow(s * Math.Clamp(Math.Round(x / s, MidpointRounding.ToEven), -qp, qp) - x, 2));
                    // Reference: every step r * max with r = k / 2048 (four times finer than the search).
                    var best = Enumerable.Range(1, 2048).Min(k => Error(max * k / 2048.0));
                    var found = Error(steps[i]);
                    var label = $"{bits} bits, group {i} of {groups.Length}";
                    Assert.IsLessThanOrEqualTo(Error(max) * (1 + 1e-6), found, label + ": never worse than the max step");
                    Assert.IsLessThanOrEqualTo(best * 1.02, found, label + ": within 2% of the brute-force least error");
                }
            }
    }

    [TestMethod]
    public void StochasticRounding_UnbiasedInTraining_NearestInEval()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(11);
        var pattern = new float[] { 0.7f, -0.56f, 0.13f, 0.31f, -0.06f };
        var w = torch.tensor(pattern).repeat(20000, 1); // max 0.7, Qp = 7 -> s = 0.1
        var quantizer = Uniform(4, sr: true);
        quantizer.train();
        var q = quantizer.forward(w);
        var codes = q / 0.1;
        Assert.IsTrue((codes - codes.round()).abs().max().item<float>() < 1e-4, "on the grid");
        AreClose(pattern, q.mean(new long[] { 0 }), 0.004, "E[q] = w");
        quantizer.eval();
        AreClose(new float[] { 0.7f, -0.6f, 0.1f, 0.3f, -0.1f }, quantizer.forward(torch.tensor(pattern)), 1e-6, "eval rounds to nearest");
    }

    [TestMethod]
    public void LearnedStep_InitializedFromMax_WithLsqGradient()
    {
        using var scope = torch.NewDisposeScope();
        var w = Matrix(1, 4, 1.5f, -0.75f, 0.25f, -1.5f);
        var quantizer = Uniform(3, lsq: true);
        Assert.IsNotNull(quantizer.Step, "per-tensor step exists before the first forward (for the optimizer)");
        Assert.AreEqual(1, quantizer.parameters().Count());

        // Init s = 0.5; r = 3, -2, 0, -3; ds: sum(r - w/s) * g = ((-2 + 1.5) + (0 - 0.5)) / sqrt(4 * 3).
        var (q, grad) = ForwardBackward(quantizer, w, torch.ones(1, 4));
        AreClose(new float[] { 1.5f, -1f, 0f, -1.5f }, q, 0);
        AreClose(new float[] { 1, 1, 1, 1 }, grad, 0);
        AreClose(new float[] { 0.5f }, quantizer.Step!, 0);
        AreClose(new float[] { (float)(-1.0 / Math.Sqrt(12)) }, quantizer.Step!.grad!, 1e-6);

        // Step 0.25: w / s = 6, -3, 1, -6 -> the ends clamp; their step gradient is +-Qp, their input gradient 0.
        using (torch.no_grad()) quantizer.Step!.fill_(0.25f);
        quantizer.Step!.grad!.zero_();
        (q, grad) = ForwardBackward(quantizer, w, Matrix(1, 4, 1, 2, 3, 4));
        AreClose(new float[] { 0.75f, -0.75f, 0.25f, -0.75f }, q, 0);
        AreClose(new float[] { 0, 2, 3, 0 }, grad, 0);
        AreClose(new float[] { (float)((3 * 1 - 3 * 4) / Math.Sqrt(12)) }, quantizer.Step!.grad!, 1e-5);
    }

    [TestMethod]
    public void LearnedPerRowStep_WithKnownRows_ExistsBeforeForward()
    {
        using var scope = torch.NewDisposeScope();
        var options = new QuantizerOptions { Kind = QuantizerKind.Uniform, Bits = 3, PerRowScale = true, LearnedScale = true };
        var quantizer = (UniformQuantizer)QuantizerFactory.Create(options, rows: 2);
        CollectionAssert.AreEqual(new long[] { 2, 1 }, quantizer.Step!.shape);
        var w = Matrix(2, 2, 1.5f, -0.75f, 0.3f, 0.14f);
        quantizer.forward(w);
        AreClose(new float[] { 0.5f, 0.1f }, quantizer.Step!, 1e-7);
        Assert.ThrowsExactly<ArgumentException>(() => quantizer.forward(torch.ones(3, 2)));
    }

    /// <summary>
    /// Li et al.'s fixed grid: the step is max|w| / Qp of the first weights (1.5 / 3 = 0.5), kept when the weights grow
    /// (3.0 then clamps to Qp * 0.5 = 1.5, where a re-derived step would be 1.0), saved with the module, never a parameter.
    /// </summary>
    [TestMethod]
    public void FixedStep_IsTakenOnce_AndSavesWithTheModule()
    {
        using var scope = torch.NewDisposeScope();
        var options = QuantizerRegistry.Parse("uniform3-fixed");
        var quantizer = (UniformQuantizer)QuantizerFactory.Create(options, rows: 1);
        Assert.IsEmpty(quantizer.parameters(), "a fixed step is a buffer, not trained");
        AreClose(new float[] { 1.5f, -1f, 0f, -1.5f }, quantizer.forward(Matrix(1, 4, 1.5f, -0.75f, 0.25f, -1.5f)), 0);
        AreClose(new float[] { 0.5f }, quantizer.FixedStep!, 0);

        var grown = Matrix(1, 4, 3f, -0.75f, 0.25f, -1f);
        AreClose(new float[] { 1.5f, -1f, 0f, -1f }, quantizer.forward(grown), 0, "same grid: 3.0 clamps to 1.5");
        AreClose(new float[] { 3f, -1f, 0f, -1f }, Uniform(3).forward(grown), 0, "a re-derived step (1.0) moves the grid");
        CollectionAssert.AreEqual(new[] { 0.5f }, quantizer.Encode(grown).Scales);

        using var stream = new MemoryStream();
        using (var writer = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true)) quantizer.save(writer);
        stream.Position = 0;
        var loaded = (UniformQuantizer)QuantizerFactory.Create(options, rows: 1);
        using (var reader = new BinaryReader(stream)) loaded.load(reader);
        AreClose(new float[] { 0.5f }, loaded.FixedStep!, 0);
        AreClose(new float[] { 1.5f, -1f, 0f, -1f }, loaded.forward(grown), 0, "the loaded step is kept");
    }

    [TestMethod]
    public void LearnedStep_SavesAndLoadsWithTheModule()
    {
        using var scope = torch.NewDisposeScope();
        var w = Matrix(2, 2, 1.5f, -0.75f, 0.3f, 0.14f);
        var options = QuantizerRegistry.Parse("uniform3-lsq-row");
        var trained = (UniformQuantizer)QuantizerFactory.Create(options, rows: 2);
        trained.forward(w);
        using (torch.no_grad()) trained.Step!.mul_(1.5f); // as if training had moved it

        using var stream = new MemoryStream();
        using (var writer = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true)) trained.save(writer);
        stream.Position = 0;
        var loaded = (UniformQuantizer)QuantizerFactory.Create(options, rows: 2);
        using (var reader = new BinaryReader(stream)) loaded.load(reader);

        AreClose(Values(trained.Step!), loaded.Step!, 0);
        loaded.eval();
        trained.eval();
        AreClose(Values(trained.forward(w)), loaded.forward(w), 0, "a loaded step is kept, not re-initialized");
        CollectionAssert.AreEqual(trained.Encode(w).Scales, loaded.Encode(w).Scales);
    }

    [TestMethod]
    public void ActivationUse_OneDimensionalAndAllZero()
    {
        using var scope = torch.NewDisposeScope();
        var quantizer = Uniform(2); // ternary levels -1, 0, 1 times max |x|
        AreClose(new float[] { 0.8f, 0f, -0.8f, 0.8f }, quantizer.forward(torch.tensor(new float[] { 0.8f, 0.3f, -0.5f, 0.41f })), 1e-7);
        AreClose(new float[] { 0, 0, 0 }, quantizer.forward(torch.zeros(3)), 0);
        Assert.ThrowsExactly<ArgumentException>(() => quantizer.Encode(torch.ones(3)));
    }

    [TestMethod]
    public void SpanForm_HandWorked()
    {
        // 3 bits per tensor: s = max |x| / 3 = 0.5; x / s = 3, -1.5, 0.5, -3 -> 3, -2, 0, -3 (half to even); nothing clips.
        var values = new double[] { 1.5, -0.75, 0.25, -1.5 };
        var factors = new double[4];
        Uniform(3).Quantize<double>(values, factors, 1, 4, ScalarType.Float64, CPU);
        CollectionAssert.AreEqual(new double[] { 1.5, -1, 0, -1.5 }, values);
        CollectionAssert.AreEqual(new double[] { 1, 1, 1, 1 }, factors);
        // Multiplier 0.5: s = 0.25, levels -3..3 reach +-0.75, so the two largest clip (factor 0) and 0.25 stays.
        values = new double[] { 1.5, -0.75, 0.25, -1.5 };
        Uniform(3, multiplier: 0.5).Quantize<double>(values, factors, 1, 4, ScalarType.Float64, CPU);
        CollectionAssert.AreEqual(new double[] { 0.75, -0.75, 0.25, -0.75 }, values);
        CollectionAssert.AreEqual(new double[] { 0, 1, 1, 0 }, factors);
        Assert.IsNull(Uniform(3, lsq: true).SpanForm, "a learned step has no span form");
        Assert.IsNull(Uniform(3, mse: true).SpanForm, "a minimum-error step has no span form");
    }

    [TestMethod]
    [DataRow(false, false, false, 1.0)]
    [DataRow(true, false, false, 1.0)]
    [DataRow(false, true, false, 1.0)]
    [DataRow(true, false, true, 0.7)]
    [DataRow(false, true, true, 0.6)]
    public void SpanForm_EqualsForward(bool perRow, bool stochastic, bool powerOfTwo, double multiplier)
    {
        // Training mode, so stochastic rounding draws: the span form takes the same draws from the same generator state.
        using var scope = torch.NewDisposeScope();
        var quantizer = Uniform(4, perRow, stochastic, powerOfTwo, multiplier: multiplier);
        quantizer.train();
        var x = torch.randn(6, 40, ScalarType.Float32);
        x[2].zero_(); // an all-zero row: step 1 per row
        using var random = TrainingRandom.Use(5);
        var expected = quantizer.forward(x).data<float>().ToArray();
        var gradient = x.clone().requires_grad_();
        TrainingRandom.Reseed(5);
        quantizer.forward(gradient).sum().backward();
        TrainingRandom.Reseed(5);
        var values = x.data<float>().ToArray();
        var factors = new float[values.Length];
        Assert.AreSame(quantizer, quantizer.SpanForm);
        quantizer.Quantize<float>(values, factors, 6, 40, ScalarType.Float32, CPU);
        CollectionAssert.AreEqual(expected, values);
        CollectionAssert.AreEqual(gradient.grad!.data<float>().ToArray(), factors, "straight-through factors = forward's input gradient");
        Assert.IsTrue(expected.Distinct().Count() > 8, "many levels used");
    }
}
