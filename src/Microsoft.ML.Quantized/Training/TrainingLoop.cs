using System.Diagnostics;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized;

/// <summary>
/// The training loop shared by every model: optimizer, gradient clipping, learning-rate decay on plateau,
/// batch-norm recalibration and validation, early stopping with best-weights restore, divergence detection, per-epoch
/// checkpoints with exact resume, and progress reports.
/// </summary>
internal static class TrainingLoop
{
    /// <summary>Trains <paramref name="task"/>; returns the history (the network ends with its best weights).</summary>
    public static IReadOnlyList<EpochSummary> Run(
        TrainingTask task,
        TrainingOptions options,
        string configurationFingerprint,
        IProgress<TrainingProgress>? progress,
        CancellationToken cancellationToken)
    {
        if (!options.KeepFloatShadowWeights) CheckFixedGrid(task);
        var network = task.Network;
        var parameters = network.parameters().ToList();
        using var optimizer = CreateOptimizer(options, parameters);
        var state = new LoopState(options.LearningRate);
        var checkpoint = options.CheckpointDirectory is null ? null : new Checkpoint(options.CheckpointDirectory, configurationFingerprint);
        if (checkpoint is not null && checkpoint.TryRestore(network, optimizer, out var restored))
            state = restored;

        int steps = options.MaxStepsPerEpoch > 0 ? Math.Min(options.MaxStepsPerEpoch, task.StepsPerEpoch) : task.StepsPerEpoch;
        var clock = Stopwatch.StartNew();
        for (int epoch = state.EpochsDone + 1; epoch <= options.Epochs && !state.Stopped; epoch++)
        {
            SetLearningRate(optimizer, state.LearningRate);
            TrainingRandom.Reseed(EpochSeed(options.Seed, epoch));
            network.train();
            task.BeginEpoch(epoch);
            var epochClock = Stopwatch.StartNew();
            double lossSum = 0, gradientNormSum = 0, gradientNormMax = 0;
            long epochUnits = 0;
            for (int step = 0; step < steps; step++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                using (var scope = torch.NewDisposeScope())
                {
                    optimizer.zero_grad();
                    var (loss, units) = task.TrainingLoss(step);
                    double lossValue = loss.item<float>();
                    if (!double.IsFinite(lossValue)) throw Diverged(network, state, options, epoch, step, "loss", lossValue);
                    var total = task.Regularizer is null ? loss : loss.add(task.Regularizer(), Scalars.One);
                    total.backward();
                    double gradNorm = ClipGradientNorm(parameters, options.GradientClipNorm);
                    if (!double.IsFinite(gradNorm)) throw Diverged(network, state, options, epoch, step, "gradient norm", gradNorm);
                    gradientNormSum += gradNorm;
                    gradientNormMax = Math.Max(gradientNormMax, gradNorm);
                    optimizer.step();
                    if (options.KeepFloatShadowWeights) ConstrainShadowWeights(task);
                    else ProjectOntoQuantizationGrid(task);
                    lossSum += lossValue * units;
                    epochUnits += units;
                }
                bool last = step == steps - 1;
                if (progress is not null && !last && (step + 1) % Math.Max(1, options.ProgressInterval) == 0)
                    progress.Report(Report(options, state, epoch, step + 1, steps, lossSum / epochUnits, epochUnits, epochClock.Elapsed.TotalSeconds, clock, null));
            }
            double seconds = epochClock.Elapsed.TotalSeconds; // training only, before validation
            if (options.BatchNormRecalibrationSteps > 0)
                BatchNormRecalibration.Run(network, Math.Min(options.BatchNormRecalibrationSteps, steps), i =>
                {
                    if (i == 0) task.BeginEpoch(epoch); // the epoch's first batches again, from a fresh state
                    task.TrainingLoss(i);
                });
            double? validation;
            using (torch.no_grad())
            {
                network.eval();
                validation = task.ValidationLoss(cancellationToken);
                network.train();
            }
            double trainLoss = lossSum / Math.Max(1, epochUnits);
            state.History.Add(new EpochSummary(epoch, trainLoss, validation ?? double.NaN, state.LearningRate, epochUnits / Math.Max(seconds, 1e-9), seconds,
                gradientNormSum / steps, gradientNormMax));
            progress?.Report(Report(options, state, epoch, steps, steps, trainLoss, epochUnits, seconds, clock, validation));
            state.EndEpoch(epoch, validation ?? trainLoss, network, options);
            checkpoint?.Save(network, optimizer, state);
        }
        if (state.BestWeights is not null) LoadWeights(network, state.BestWeights);
        network.eval();
        return state.History;
    }

    /// <summary>Seed used for an epoch, so a resumed run replays exactly what an uninterrupted one would.</summary>
    internal static long EpochSeed(int seed, int epoch) => (long)seed * 1_000_003L + epoch;

    internal static byte[] SaveWeights(nn.Module network)
    {
        using var memory = new MemoryStream();
        using (var writer = new BinaryWriter(memory, System.Text.Encoding.UTF8, leaveOpen: true)) network.save(writer);
        return memory.ToArray();
    }

    internal static void LoadWeights(nn.Module network, byte[] weights)
    {
        using var reader = new BinaryReader(new MemoryStream(weights));
        network.load(reader);
    }

    private static OptimizerHelper CreateOptimizer(TrainingOptions options, IEnumerable<Parameter> parameters) => options.Optimizer switch
    {
        OptimizerKind.Sgd => new Optimizers.SGD(parameters, options.LearningRate, options.WeightDecay),
        OptimizerKind.Adam => new Optimizers.Adam(parameters, options.LearningRate, options.WeightDecay),
        _ => throw new ArgumentOutOfRangeException(nameof(options), options.Optimizer, "Unknown optimizer."),
    };

    private static void SetLearningRate(OptimizerHelper optimizer, double learningRate)
    {
        foreach (var group in optimizer.ParamGroups) group.LearningRate = learningRate;
    }

    /// <summary>Added to the global norm before dividing, as libtorch's clip does.</summary>
    private static readonly Scalar NormEpsilon = 1e-6;

    /// <summary>
    /// The global L2 norm of all gradients, infinite or NaN only when a gradient is, and with a positive
    /// <paramref name="maxNorm"/> the gradients scaled to it where it is larger. While the norm fits in float32 this is
    /// libtorch's <c>clip_grad_norm_</c> operation for operation (the same bits; the per-tensor norms' norm,
    /// <c>min(maxNorm / (norm + 1e-6), 1)</c> as a float32 tensor). A float32 norm overflows once entries pass about 1.8e19
    /// (their squares leave float32's range) although every entry is finite; the norm is then taken again in float64, so an
    /// exploding but finite gradient is scaled down (Pascanu et al. 2013) instead of the step being called diverged (or, as
    /// libtorch's clip does, zeroed).
    /// </summary>
    internal static double ClipGradientNorm(IReadOnlyList<Parameter> parameters, double maxNorm)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var gradients = parameters.Select(p => p.grad).OfType<Tensor>().ToList();
        if (gradients.Count == 0) return 0;
        var norms = gradients.Select(g => g.norm()).ToArray();
        var total = torch.stack(norms).norm();
        double norm = total.item<float>();
        bool fitsFloat32 = !double.IsPositiveInfinity(norm);
        if (!fitsFloat32)
        {
            // Only a tensor whose own float32 norm overflowed is measured again; the sum is taken in double.
            double Wide(Tensor gradient, Tensor narrow) => narrow.item<float>() is var n && float.IsPositiveInfinity(n)
                ? gradient.to_type(ScalarType.Float64).norm().item<double>() : n;
            norm = Math.Sqrt(gradients.Zip(norms).Sum(t => Math.Pow(Wide(t.First, t.Second), 2)));
        }
        if (maxNorm <= 0 || !double.IsFinite(norm)) return norm;
        using var max = maxNorm.ToScalar();
        var coefficient = fitsFloat32
            ? total.add(NormEpsilon, Scalars.One).reciprocal().mul(max).clamp_max(Scalars.One)
            : torch.tensor(Math.Min(maxNorm / (norm + 1e-6), 1), ScalarType.Float32);
        // A coefficient of 1 leaves every gradient as it is: no pass over them.
        if (coefficient.item<float>() < 1)
            foreach (var g in gradients) g.mul_(coefficient);
        return norm;
    }

    /// <summary>Each quantizer's constraint on its float shadow weight (BinaryConnect's clip to [-1, 1]), after the optimizer step.</summary>
    private static void ConstrainShadowWeights(TrainingTask task)
    {
        using var noGrad = torch.no_grad();
        foreach (var (weight, quantizer) in task.QuantizedWeights) quantizer.ConstrainShadowWeight(weight);
    }

    /// <summary>
    /// Without shadow weights the weights are projected onto the quantizer's grid after every step (Li et al. 2017); a
    /// uniform step re-derived from max |w| would move that grid every step, so a fixed step is required.
    /// </summary>
    private static void CheckFixedGrid(TrainingTask task)
    {
        foreach (var (_, quantizer) in task.QuantizedWeights)
        {
            if (quantizer is not UniformQuantizer uniform || uniform.Options.FixedStep) continue;
            var fixedStep = uniform.Options;
            fixedStep.FixedStep = true;
            fixedStep.LearnedScale = false;
            throw new ArgumentException(
                $"TrainingOptions.KeepFloatShadowWeights = false with the weight quantizer '{uniform.RegistryName}' would re-derive its step from " +
                "max |w| after every update (a moving grid); Li et al. 2017 train without shadow weights on a fixed grid. Use a fixed step " +
                $"(QuantizerOptions.FixedStep = true, e.g. '{QuantizerRegistry.NameOf(fixedStep)}'), or keep the shadow weights.",
                nameof(TrainingOptions.KeepFloatShadowWeights));
        }
    }

    private static void ProjectOntoQuantizationGrid(TrainingTask task)
    {
        using var noGrad = torch.no_grad();
        foreach (var (weight, quantizer) in task.QuantizedWeights)
        {
            if (quantizer.IsIdentity) continue;
            using var projected = quantizer.forward(weight);
            weight.copy_(projected);
        }
    }

    private static TrainingDivergedException Diverged(nn.Module network, LoopState state, TrainingOptions options, int epoch, int step, string quantity, double value)
    {
        if (state.BestWeights is not null) LoadWeights(network, state.BestWeights);
        return new TrainingDivergedException(epoch, step + 1, quantity, value,
            DivergenceAdvice(network.modules().OfType<QuantizedRecurrentCell>().ToList(), options.GradientClipNorm));
    }

    /// <summary>
    /// What to change after a divergence, given the recurrent <paramref name="cells"/> and the clipping norm in force
    /// (<paramref name="gradientClipNorm"/>, 0 = off): the general advice, unless in-cell normalization is already on
    /// everywhere; then the learning rate, clipping where it is off, batch normalization's constant steps where it is on
    /// and, where a slope is below 1, the slopes.
    /// </summary>
    internal static string DivergenceAdvice(IReadOnlyList<QuantizedRecurrentCell> cells, double gradientClipNorm)
    {
        if (cells.Count == 0 || cells.Any(c => c.Normalization == RecurrentNormalization.None)) return TrainingDivergedException.GeneralAdvice;
        double steepest = cells.Min(c => new[] { c.Slopes.InputGate, c.Slopes.ForgetGate, c.Slopes.OutputGate, c.Slopes.Candidate, c.Slopes.CellOutput }.Min());
        string clip = gradientClipNorm > 0
            ? $" (GradientClipNorm, {gradientClipNorm.ToString(System.Globalization.CultureInfo.InvariantCulture)}, is on but cannot rescale a gradient that is already NaN or infinite)"
            : " or set GradientClipNorm (e.g. 0.25)";
        var batchNorms = cells.Select(c => c.HiddenBatchNorm).OfType<RecurrentBatchNorm>().ToList();
        string batch = batchNorms.Count > 0
            ? "; batch normalization divides each step by its standard deviation over the batch, which is 0 where every sequence of " +
              "the batch is the same (a constant lead-in, e.g. the blank first rows of MNIST read pixel by pixel): its derivative " +
              $"there is gain / sqrt(epsilon){ZeroVarianceFactor(batchNorms)}, so many such steps overflow the gradient; start each " +
              "sequence from a noisy state (SequenceClassifierOptions.InitialStateNoise, e.g. 0.1), drop the constant steps or " +
              "use Normalization = Layer"
            : "";
        return $"In-cell normalization ({cells[0].Normalization}) is already on: lower the LearningRate{clip}{batch}" +
               (steepest < 1
                   ? $"; the slope {steepest.ToString(System.Globalization.CultureInfo.InvariantCulture)} makes a gate's derivative up to " +
                     $"{(1 / steepest).ToString("0.##", System.Globalization.CultureInfo.InvariantCulture)} times the standard one at the unit-scale " +
                     "pre-activations normalization produces, so try ActivationSlopes nearer 1."
                   : ".");
    }

    /// <summary>
    /// The largest hidden-side batch-norm derivative at a zero-variance step, largest |gain| / sqrt(epsilon), over
    /// <paramref name="batchNorms"/>, worded for the advice; empty where a gain is no longer finite.
    /// </summary>
    private static string ZeroVarianceFactor(IReadOnlyList<RecurrentBatchNorm> batchNorms)
    {
        (double Gain, double Epsilon) largest;
        using (torch.NewDisposeScope())
        using (torch.no_grad())
            largest = batchNorms.Select(b => ((double)b.Gain.abs().max().item<float>(), b.Epsilon)).MaxBy(p => p.Item1 / Math.Sqrt(p.Epsilon));
        return double.IsFinite(largest.Gain)
            ? string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $", {largest.Gain / Math.Sqrt(largest.Epsilon):0.#} at this network's largest gain, {largest.Gain:0.###}, and epsilon {largest.Epsilon:G3}")
            : "";
    }

    private static TrainingProgress Report(TrainingOptions options, LoopState state, int epoch, int step, int steps, double loss,
        long epochUnits, double epochSeconds, Stopwatch clock, double? validation)
    {
        double rate = epochUnits / Math.Max(epochSeconds, 1e-9);
        int epochsThisRun = epoch - state.FirstEpochThisRun;
        double doneThisRun = epochsThisRun + (double)step / steps;
        double remainingEpochs = options.Epochs - (epoch - 1) - (double)step / steps;
        var remaining = TimeSpan.FromSeconds(clock.Elapsed.TotalSeconds / Math.Max(doneThisRun, 1e-9) * remainingEpochs);
        return new TrainingProgress(epoch, options.Epochs, step, steps, loss, state.LearningRate, rate, clock.Elapsed, remaining, validation);
    }
}
