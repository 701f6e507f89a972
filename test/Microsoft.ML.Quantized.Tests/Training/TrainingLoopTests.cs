using TorchSharp;

namespace Microsoft.ML.Quantized.Tests;

[TestClass]
public sealed class TrainingLoopTests
{
    private static readonly string Train = TinyCorpus.Text(80);
    private static readonly string Valid = TinyCorpus.Text(20, seed: 5);
    private static readonly Vocabulary Chars = Vocabulary.FromCharacters(Train + Valid);

    [TestMethod]
    public void ResumingFromACheckpointEndsExactlyLikeAnUninterruptedRun()
    {
        var root = Path.Combine(Path.GetTempPath(), "mlqz-resume-" + Guid.NewGuid().ToString("N"));
        try
        {
            var options = TinyCorpus.Model(QuantizerKind.TernaryWeightNet, RecurrentNormalization.Layer);
            var straight = TinyCorpus.Training(3);
            straight.Optimizer = OptimizerKind.Adam; // has optimizer state that must survive the resume
            using var uninterrupted = QuantizedLanguageModel.Train(Chars, Train, Valid, options, straight);

            var resumable = straight.Clone();
            resumable.CheckpointDirectory = root;
            using var cancel = new CancellationTokenSource();
            var stopInEpochTwo = new SynchronousProgress<TrainingProgress>(p => { if (p.Epoch == 2) cancel.Cancel(); });
            resumable.ProgressInterval = 1;
            Assert.ThrowsExactly<OperationCanceledException>(() =>
                QuantizedLanguageModel.Train(Chars, Train, Valid, options, resumable, stopInEpochTwo, cancel.Token));
            Assert.IsTrue(File.Exists(Path.Combine(root, "training.checkpoint")));

            using var resumed = QuantizedLanguageModel.Train(Chars, Train, Valid, options, resumable);
            Assert.AreEqual(3, resumed.History.Count, "history carries the epoch done before the interruption");
            Assert.AreEqual(uninterrupted.Evaluate(Valid).CrossEntropy, resumed.Evaluate(Valid).CrossEntropy, 0.0);
            for (int i = 0; i < 3; i++)
                Assert.AreEqual(uninterrupted.History[i].ValidationLoss, resumed.History[i].ValidationLoss, 0.0, $"epoch {i + 1}");
        }
        finally
        {
            if (Directory.Exists(root)) Directory.Delete(root, recursive: true);
        }
    }

    [TestMethod]
    public void ACheckpointOfAnotherConfigurationIsRefused()
    {
        var root = Path.Combine(Path.GetTempPath(), "mlqz-foreign-" + Guid.NewGuid().ToString("N"));
        try
        {
            var training = QuantizedLanguageModelTests.WithSteps(TinyCorpus.Training(1), 2);
            training.CheckpointDirectory = root;
            using (QuantizedLanguageModel.Train(Chars, Train, null, TinyCorpus.Model(), training)) { }
            var error = Assert.ThrowsExactly<InvalidDataException>(() =>
                QuantizedLanguageModel.Train(Chars, Train, null, TinyCorpus.Model(QuantizerKind.TernaryWeightNet), training));
            StringAssert.Contains(error.Message, "different model or training configuration");
        }
        finally
        {
            if (Directory.Exists(root)) Directory.Delete(root, recursive: true);
        }
    }

    [TestMethod]
    [DataRow(false, "loss")]
    [DataRow(true, "gradient norm")]
    public void DivergenceStopsWithTheStepNamed(bool nanGradientOnly, string quantity)
    {
        var task = new PoisonedTask(poisonStep: 2, nanGradientOnly);
        var training = new TrainingOptions { Epochs = 2, LearningRate = 0.1, GradientClipNorm = nanGradientOnly ? 0 : 1 };
        var error = Assert.ThrowsExactly<TrainingDivergedException>(() => TrainingLoop.Run(task, training, "test", null, CancellationToken.None));
        Assert.AreEqual(1, error.Epoch);
        Assert.AreEqual(3, error.Step, "step 2 (0-based) is the third step");
        Assert.AreEqual(quantity, error.Quantity);
        StringAssert.Contains(error.Message, "epoch 1, step 3");
        StringAssert.Contains(error.Message, "LearningRate");
    }

    [TestMethod]
    [DataRow(0.5)]
    [DataRow(1e6)]
    public void ClippingMatchesLibtorchsClipGradNormBitForBit(double maxNorm)
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(11);
        TorchSharp.Modules.Parameter[] Parameters() => new[] { new TorchSharp.Modules.Parameter(torch.zeros(7, 5)), new TorchSharp.Modules.Parameter(torch.zeros(13)), new TorchSharp.Modules.Parameter(torch.zeros(3, 2, 4)) };
        var ours = Parameters();
        var theirs = Parameters();
        foreach (var (a, b) in ours.Zip(theirs))
        {
            var gradient = torch.randn(a.shape) * 3;
            a.grad = gradient.clone();
            b.grad = gradient.clone();
        }
        double norm = TrainingLoop.ClipGradientNorm(ours, maxNorm);
        double reference = torch.nn.utils.clip_grad_norm_(theirs, maxNorm);
        Assert.AreEqual(reference, norm, 0.0);
        foreach (var (a, b) in ours.Zip(theirs))
            Assert.IsTrue(a.grad!.eq(b.grad!).all().item<bool>(), "the clipped gradients are the same bits");
        Assert.AreEqual(maxNorm == 0.5, norm > maxNorm, "the rows cover a clipped and an unclipped gradient");
    }

    /// <summary>
    /// A finite gradient whose float32 norm overflows (entries 1e25: their squares leave float32's range) is clipped, not
    /// reported as diverged: y = w + b, loss 1e25 y, so the gradient is (1e25, 1e25), its norm sqrt(2) 1e25, clipped to
    /// norm 1 each entry is 1/sqrt(2), and one SGD step at rate 0.1 moves w and b by 0.1/sqrt(2).
    /// </summary>
    [TestMethod]
    public void AFiniteGradientBeyondFloat32NormRangeIsClippedNotDiverged()
    {
        var task = new HugeGradientTask();
        var training = new TrainingOptions { Epochs = 1, Optimizer = OptimizerKind.Sgd, LearningRate = 0.1, GradientClipNorm = 1 };
        var history = TrainingLoop.Run(task, training, "test", null, CancellationToken.None);
        var moved = 0.1 / Math.Sqrt(2);
        Assert.AreEqual(0.5 - moved, task.Weight, 1e-6);
        Assert.AreEqual(0.25 - moved, task.Bias, 1e-6);
        Assert.AreEqual(Math.Sqrt(2) * 1e25, history.Single().MaxGradientNorm, 1e-6 * Math.Sqrt(2) * 1e25);
    }

    [TestMethod]
    public void DivergenceAdviceFitsTheNetwork()
    {
        IReadOnlyList<QuantizedRecurrentCell> Cells(RecurrentNormalization normalization, double slope)
        {
            var options = RecurrentTestSupport.Options(RecurrentCellKind.Lstm, hidden: 4, layers: 2, normalization);
            options.Slopes = ActivationSlopes.All(slope);
            return new QuantizedRecurrentStack("s", 3, options).Layers;
        }
        Assert.AreEqual(TrainingDivergedException.GeneralAdvice, TrainingLoop.DivergenceAdvice(Cells(RecurrentNormalization.None, 0.25), 0.25));
        Assert.AreEqual(TrainingDivergedException.GeneralAdvice, TrainingLoop.DivergenceAdvice(Array.Empty<QuantizedRecurrentCell>(), 0.25));
        Assert.AreEqual("In-cell normalization (Layer) is already on: lower the LearningRate or set GradientClipNorm (e.g. 0.25).",
            TrainingLoop.DivergenceAdvice(Cells(RecurrentNormalization.Layer, 1), 0));
        // With clipping on, it is not advised again: it cannot rescale a NaN or infinite gradient.
        Assert.AreEqual("In-cell normalization (Layer) is already on: lower the LearningRate (GradientClipNorm, 0.25, is on but cannot rescale " +
            "a gradient that is already NaN or infinite).", TrainingLoop.DivergenceAdvice(Cells(RecurrentNormalization.Layer, 1), 0.25));
        // Batch norm: steps that are the same across the batch (zero batch variance) multiply the gradient by gain / sqrt(eps).
        var batch = TrainingLoop.DivergenceAdvice(Cells(RecurrentNormalization.BatchPerStep, 0.25), 1);
        StringAssert.Contains(batch, "its derivative there is gain / sqrt(epsilon), 31.6 at this network's largest gain, 0.1, and epsilon 1E-05, so");
        // The factor is read from the network: a gain grown to 0.5 in the second layer gives 0.5 / sqrt(1e-5) = 158.1.
        var grown = Cells(RecurrentNormalization.BatchPerStep, 1);
        using (torch.no_grad()) grown[1].HiddenBatchNorm!.Gain[2].fill_(-0.5);
        StringAssert.Contains(TrainingLoop.DivergenceAdvice(grown, 1), "gain / sqrt(epsilon), 158.1 at this network's largest gain, 0.5, and epsilon 1E-05, so");
        // A gain that is no longer finite leaves the factor out rather than print NaN.
        using (torch.no_grad()) grown[0].HiddenBatchNorm!.Gain.fill_(float.NaN);
        using (torch.no_grad()) grown[1].HiddenBatchNorm!.Gain.fill_(float.NaN);
        StringAssert.Contains(TrainingLoop.DivergenceAdvice(grown, 1), "its derivative there is gain / sqrt(epsilon), so many such steps overflow");
        StringAssert.Contains(TrainingLoop.DivergenceAdvice(Cells(RecurrentNormalization.BatchShared, 1), 1), "start each sequence from a noisy state (SequenceClassifierOptions.InitialStateNoise, e.g. 0.1), drop the constant steps or use Normalization = Layer.");
        // Slope 0.25: sigmoid(x / 0.25) and tanh(x / 0.25) have 4 times the standard derivative at 0.
        StringAssert.Contains(batch, "the slope 0.25 makes a gate's derivative up to 4 times the standard one");
        Assert.AreEqual("Training diverged at epoch 2, step 5: the loss is NaN. advice.", new TrainingDivergedException(2, 5, "loss", double.NaN, "advice.").Message);
    }

    [TestMethod]
    public void BadOptionsAreRejectedWithTheOptionNamed()
    {
        void Expect(Action<LanguageModelOptions, TrainingOptions> spoil, string name)
        {
            var model = TinyCorpus.Model();
            var training = TinyCorpus.Training(1);
            spoil(model, training);
            var error = Assert.Throws<ArgumentException>(() => QuantizedLanguageModel.Train(Chars, Train, null, model, training));
            StringAssert.Contains(error.Message, name);
        }
        Expect((m, t) => t.Epochs = 0, "TrainingOptions.Epochs");
        Expect((m, t) => t.LearningRate = double.NaN, "TrainingOptions.LearningRate");
        Expect((m, t) => t.LearningRateDecay = 0.5, "TrainingOptions.LearningRateDecay");
        Expect((m, t) => t.BatchNormRecalibrationSteps = -1, "TrainingOptions.BatchNormRecalibrationSteps");
        Expect((m, t) => t.StateResetProbability = 1.0, "TrainingOptions.StateResetProbability must be in [0, 1)");
        Expect((m, t) => t.StateResetProbability = -0.1, "TrainingOptions.StateResetProbability must be in [0, 1)");
        Expect((m, t) => t.Device = "tpu", "Device");
        Expect((m, t) => m.Recurrent.HiddenSize = 0, "LanguageModelOptions.Recurrent.HiddenSize");
        Expect((m, t) => m.Recurrent.Dropout = 1.0, "LanguageModelOptions.Recurrent.Dropout");
        Expect((m, t) => m.Recurrent.Slopes.ForgetGate = 0, "LanguageModelOptions.Recurrent.Slopes.ForgetGate");
        Expect((m, t) => m.Recurrent.WeightQuantizer = new QuantizerOptions { Kind = QuantizerKind.Uniform, Bits = 12 }, "LanguageModelOptions.Recurrent.WeightQuantizer");
        Expect((m, t) => m.Recurrent.ActivationQuantizer = new QuantizerOptions { Kind = QuantizerKind.TernaryWeightNet }, "LanguageModelOptions.Recurrent.ActivationQuantizer");
        var uniform = new QuantizerOptions { Kind = QuantizerKind.Uniform, Bits = 4 };
        Expect((m, t) => (m.Recurrent.ActivationQuantizer, m.Recurrent.QuantizedActivations) = (uniform, RecurrentActivations.None),
            "LanguageModelOptions.Recurrent.QuantizedActivations is None but LanguageModelOptions.Recurrent.ActivationQuantizer is uniform4");
        Expect((m, t) => m.Recurrent.QuantizedActivations = (RecurrentActivations)8, "LanguageModelOptions.Recurrent.QuantizedActivations = 8 is not a combination");
        Expect((m, t) => (m.Recurrent.Cell, m.Recurrent.ActivationQuantizer, m.Recurrent.QuantizedActivations) = (RecurrentCellKind.Gru, uniform, RecurrentActivations.CellState),
            "LanguageModelOptions.Recurrent.QuantizedActivations includes CellState, but a Gru has no cell state");
        Expect((m, t) => (m.Recurrent.ActivationQuantizer, m.Recurrent.QuantizedActivations) = (new QuantizerOptions { Kind = QuantizerKind.BernoulliTernary }, RecurrentActivations.CellState),
            "includes CellState with the btq activation quantizer: the cell state is unbounded");
    }

    /// <summary>
    /// Each epoch's gradient norms are taken before clipping: replayed by hand (same seed, same batches, the loop's SGD step
    /// w -= lr * g * min(1, clip / |g|) written out here), the two steps' global norms give the recorded mean and maximum.
    /// </summary>
    [TestMethod]
    public void EachEpochRecordsTheMeanAndLargestGradientNormBeforeClipping()
    {
        var training = QuantizedLanguageModelTests.WithSteps(TinyCorpus.Training(1), 2);
        (training.Optimizer, training.LearningRate, training.GradientClipNorm) = (OptimizerKind.Sgd, 0.5, 0.05);
        using var model = QuantizedLanguageModel.Train(Chars, Train, null, TinyCorpus.Model(), training);
        var epoch = model.History.Single();

        var norms = new List<double>();
        using (var random = TrainingRandom.Use(training.Seed))
        using (var network = new LanguageModelNetwork(Chars.Count, TinyCorpus.Model()))
        using (var batches = new TokenStreamBatcher(Chars.Encode(Train), training.BatchSize, training.SequenceLength, torch.CPU))
        using (var task = new LanguageModelTask(network, batches, null))
        {
            TrainingRandom.Reseed(TrainingLoop.EpochSeed(training.Seed, 1));
            network.train();
            task.BeginEpoch(1);
            var parameters = network.parameters().ToList();
            for (int step = 0; step < 2; step++)
            {
                using var scope = torch.NewDisposeScope();
                foreach (var p in parameters) p.grad?.zero_();
                task.TrainingLoss(step).Loss.backward();
                double norm = Math.Sqrt(parameters.Where(p => p.grad is not null).Sum(p => p.grad!.pow(2).sum().item<float>()));
                norms.Add(norm);
                using var noGrad = torch.no_grad();
                double scale = Math.Min(1, training.GradientClipNorm / (norm + 1e-6));
                foreach (var p in parameters.Where(p => p.grad is not null)) p.sub_(p.grad! * (training.LearningRate * scale));
            }
        }
        Assert.IsTrue(norms.All(n => n > training.GradientClipNorm), $"both steps clip: {string.Join(", ", norms)}");
        Assert.AreEqual(norms.Average(), epoch.MeanGradientNorm, 1e-4 * norms.Average());
        Assert.AreEqual(norms.Max(), epoch.MaxGradientNorm, 1e-4 * norms.Max());
        Assert.AreNotEqual(norms[0], norms[1], "the second step sees the updated weights");
    }

    [TestMethod]
    public void TokensOutsideTheVocabularyAreRejected()
    {
        var error = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() =>
            QuantizedLanguageModel.Train(Chars, new[] { 0, 1, 2, 999, 1, 2, 0, 1, 2, 3, 1, 2, 1, 1, 1, 1 }, null, TinyCorpus.Model(), TinyCorpus.Training(1)));
        StringAssert.Contains(error.Message, "trainingTokens[3] = 999");
    }

    [TestMethod]
    public void LiveTensorCountStaysFlatAcrossSteps()
    {
        long Leak(int steps)
        {
            long before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
            var training = QuantizedLanguageModelTests.WithSteps(TinyCorpus.Training(1), steps);
            using (QuantizedLanguageModel.Train(Chars, Train, Valid, TinyCorpus.Model(QuantizerKind.TernaryWeightNet, RecurrentNormalization.Layer), training)) { }
            return DisposeScopeManager.Statistics.ThreadTotalLiveCount - before;
        }
        Leak(2); // warm-up (lazy statics)
        long few = Leak(2), many = Leak(10);
        Assert.AreEqual(few, many, $"tensors left alive must not grow with steps: {few} after 2 steps, {many} after 10");
    }

    [TestMethod]
    public void WithoutShadowWeightsOnlyQuantizedValuesPersist()
    {
        var training = QuantizedLanguageModelTests.WithSteps(TinyCorpus.Training(1), 3);
        training.KeepFloatShadowWeights = false;
        using var model = QuantizedLanguageModel.Train(Chars, Train, null, TinyCorpus.Model(QuantizerKind.BinaryWeightNet), training);
        foreach (var (name, weight, _) in model.Network.Recurrent.QuantizedWeights())
        {
            using var abs = weight.abs();
            using var distinct = abs.unique().Item1;
            Assert.AreEqual(1L, distinct.numel(), $"{name}: after projection every weight is +-alpha");
        }
    }

    /// <summary>
    /// Li et al. 2017 without shadow weights: every weight stays on the grid fixed at the first forward. One step and four
    /// steps from the same seed end with the same step and with weights that are integer multiples of it within +-Qp.
    /// </summary>
    [TestMethod]
    public void WithoutShadowWeightsTheUniformGridIsFixedAtTheStart()
    {
        var options = TinyCorpus.Model();
        options.Recurrent.WeightQuantizer = QuantizerRegistry.Parse("uniform3-sr-fixed");
        (float[] Step, float[] Weight) Run(int steps)
        {
            var training = QuantizedLanguageModelTests.WithSteps(TinyCorpus.Training(1), steps);
            training.KeepFloatShadowWeights = false;
            using var model = QuantizedLanguageModel.Train(Chars, Train, null, options, training);
            var (_, weight, quantizer) = model.Network.Recurrent.QuantizedWeights().First();
            using var step = ((UniformQuantizer)quantizer).FixedStep!.clone();
            using var levels = weight.detach() / step;
            using var rounded = levels.round();
            Assert.IsLessThan(1e-4, (levels - rounded).abs().max().item<float>(), "weights lie on the grid");
            Assert.IsLessThanOrEqualTo(3f, rounded.abs().max().item<float>(), "within +-Qp");
            return (step.data<float>().ToArray(), weight.detach().flatten().data<float>().ToArray());
        }
        var one = Run(1);
        var four = Run(4);
        CollectionAssert.AreEqual(one.Step, four.Step, "the step does not move with the weights");
        CollectionAssert.AreNotEqual(one.Weight, four.Weight, "the weights did move");
    }

    [TestMethod]
    public void WithoutShadowWeightsAMovingUniformGridIsRefused()
    {
        var training = QuantizedLanguageModelTests.WithSteps(TinyCorpus.Training(1), 1);
        training.KeepFloatShadowWeights = false;
        var options = TinyCorpus.Model();
        options.Recurrent.WeightQuantizer = QuantizerRegistry.Parse("uniform4-sr");
        var e = Assert.ThrowsExactly<ArgumentException>(() => QuantizedLanguageModel.Train(Chars, Train, null, options, training).Dispose());
        StringAssert.Contains(e.Message, "KeepFloatShadowWeights");
        StringAssert.Contains(e.Message, "uniform4-sr-fixed");
    }

    [TestMethod]
    public void ValidationObservesCancellationBetweenBatches()
    {
        var training = QuantizedLanguageModelTests.WithSteps(TinyCorpus.Training(1), 2);
        using var model = QuantizedLanguageModel.Train(Chars, Train, null, TinyCorpus.Model(), training);
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        using var data = new TokenStreamBatcher(Chars.Encode(Train), 4, 8, torch.CPU);
        using (torch.no_grad())
            Assert.ThrowsExactly<OperationCanceledException>(() => LanguageModelTask.MeanCrossEntropy(model.Network, data, cancelled.Token));
    }

    /// <summary>A one-weight model whose loss (or only its gradient) turns NaN at a chosen step.</summary>
    private sealed class PoisonedTask(int poisonStep, bool nanGradientOnly) : TrainingTask
    {
        private readonly TorchSharp.Modules.Linear _network = torch.nn.Linear(1, 1);

        public override torch.nn.Module Network => _network;

        public override int StepsPerEpoch => 5;

        public override IEnumerable<(torch.Tensor Weight, Quantizer Quantizer)> QuantizedWeights => Array.Empty<(torch.Tensor, Quantizer)>();

        public override void BeginEpoch(int epoch) { }

        public override (torch.Tensor Loss, long Units) TrainingLoss(int step)
        {
            var y = _network.forward(torch.ones(4, 1)).mean();
            if (step != poisonStep) return (y * y, 4);
            // sqrt at 0 has an infinite slope: the value stays finite (0) while the gradient is NaN
            return nanGradientOnly ? ((y - y.detach()).sqrt(), 4) : (y * double.NaN, 4);
        }

        public override double? ValidationLoss(CancellationToken cancellationToken) => null;
    }

    /// <summary>One step of loss 1e25 (w + b) on a 1-to-1 linear layer starting at w = 0.5, b = 0.25.</summary>
    private sealed class HugeGradientTask : TrainingTask
    {
        private readonly TorchSharp.Modules.Linear _network = torch.nn.Linear(1, 1);

        public HugeGradientTask()
        {
            using var noGrad = torch.no_grad();
            _network.weight!.fill_(0.5);
            _network.bias!.fill_(0.25);
        }

        public double Weight => _network.weight!.item<float>();

        public double Bias => _network.bias!.item<float>();

        public override torch.nn.Module Network => _network;

        public override int StepsPerEpoch => 1;

        public override IEnumerable<(torch.Tensor Weight, Quantizer Quantizer)> QuantizedWeights => Array.Empty<(torch.Tensor, Quantizer)>();

        public override void BeginEpoch(int epoch) { }

        public override (torch.Tensor Loss, long Units) TrainingLoss(int step) => (_network.forward(torch.ones(1, 1)).sum() * 1e25, 1);

        public override double? ValidationLoss(CancellationToken cancellationToken) => null;
    }
}
