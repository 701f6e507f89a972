using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized;

/// <summary>
/// Recurrent batch normalization (Cooijmans et al. 2017) of one product (<c>W_x x</c> or <c>W_h h</c>) of a
/// recurrent cell: in training each step's [batch, features] slice is normalized with its own batch mean and
/// variance; in evaluation with running statistics. The gain starts at 0.1 (Cooijmans et al.: a small gain
/// keeps the gates out of saturation) and the bias at 0 (the cell keeps its own bias).
/// </summary>
/// <remarks>
/// With one set of running statistics (<see cref="RecurrentNormalization.BatchShared"/>) every step updates and
/// reads the same averages. With <c>steps</c> sets (<see cref="RecurrentNormalization.BatchPerStep"/>) step t
/// keeps its own (buffers <c>running_mean</c> and <c>running_var</c> have shape [steps, features]); steps past
/// the last set reuse it. Running averages use momentum 0.1 and the unbiased variance, like PyTorch.
/// Training needs at least 2 sequences per batch.
/// </remarks>
internal sealed class RecurrentBatchNorm : nn.Module
{
    private readonly Parameter gain;
    private readonly Parameter bias;
    // The running statistics are looked up by their registered names, never held in fields: Module.to() replaces a converted
    // buffer in the registry and in a field only of the same name, so a field of another name would keep the disposed one.
    private const string RunningMeanName = "running_mean", RunningVarName = "running_var";

    /// <summary>Creates the normalization.</summary>
    /// <param name="name">Module name.</param>
    /// <param name="features">Features per row.</param>
    /// <param name="steps">Sets of running statistics: 1 = shared across time, else one per time step.</param>
    /// <param name="initialGain">Initial gain (Cooijmans et al. 2017: 0.1).</param>
    /// <param name="momentum">Weight of the newest batch in the running averages.</param>
    /// <param name="epsilon">Added to the variance before the square root.</param>
    public RecurrentBatchNorm(string name, long features, int steps, double initialGain = 0.1, double momentum = 0.1, double epsilon = 1e-5)
        : base(name)
    {
        if (features <= 0) throw new ArgumentOutOfRangeException(nameof(features), features, "Batch normalization needs at least one feature.");
        if (steps <= 0) throw new ArgumentOutOfRangeException(nameof(steps), steps, "Batch normalization needs at least one set of running statistics.");
        Steps = steps;
        Momentum = momentum;
        Epsilon = epsilon;
        using (var gain0 = initialGain.ToScalar())
            gain = new Parameter(full(features, gain0));
        bias = new Parameter(zeros(features));
        register_parameter("gain", gain);
        register_parameter("bias", bias);
        register_buffer(RunningMeanName, zeros(steps, features));
        register_buffer(RunningVarName, ones(steps, features));
    }

    /// <summary>
    /// Before training: lowers <paramref name="options"/>' <see cref="QuantizedRecurrentOptions.MaxNormalizedSteps"/> to
    /// <paramref name="longestTrainingSequence"/> under <see cref="RecurrentNormalization.BatchPerStep"/> (a set past the
    /// longest training sequence would never see a batch); other normalizations are left as they are.
    /// </summary>
    public static void KeepTrainedStatisticSets(QuantizedRecurrentOptions options, int longestTrainingSequence)
    {
        if (options.Normalization == RecurrentNormalization.BatchPerStep)
            options.MaxNormalizedSteps = Math.Min(options.MaxNormalizedSteps, longestTrainingSequence);
    }

    /// <summary>Sets of running statistics (1 when shared across time steps).</summary>
    public int Steps { get; }

    /// <summary>Weight of the newest batch in the running averages.</summary>
    public double Momentum { get; }

    /// <summary>Added to the variance before the square root.</summary>
    public double Epsilon { get; }

    /// <summary>Learned gain, shape [features], init 0.1.</summary>
    public Parameter Gain => gain;

    /// <summary>Learned bias, shape [features], init 0.</summary>
    public Parameter Bias => bias;

    /// <summary>Running means, shape [steps, features].</summary>
    public Tensor RunningMean => get_buffer(RunningMeanName)!;

    /// <summary>Running variances, shape [steps, features].</summary>
    public Tensor RunningVar => get_buffer(RunningVarName)!;

    /// <summary>
    /// Normalizes <paramref name="input"/> (shape [batch, features]) of time step <paramref name="step"/>
    /// (0-based). Throws <see cref="InvalidOperationException"/> in training when the batch has one row.
    /// </summary>
    public Tensor Forward(Tensor input, int step)
    {
        using var scope = NewDisposeScope();
        return bias.addcmul(Standardize(input, step), gain, Scalars.One).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// <see cref="Forward"/> before gain and bias (the running statistics are updated the same way): a cell that adds the
    /// result to another term applies them as <c>term.addcmul(Standardize(x, t), Gain)</c> with <see cref="Bias"/> folded
    /// into that term.
    /// </summary>
    public Tensor Standardize(Tensor input, int step)
    {
        using var scope = NewDisposeScope();
        return StandardizeSteps(input.unsqueeze(0), Math.Max(step, 0)).squeeze(0).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Normalizes every step of <paramref name="input"/> (shape [time, batch, features]) at once, exactly as
    /// <see cref="Forward"/> called for steps 0, 1, ... in order would: in training each step with its own batch
    /// statistics, the running averages updated step after step (a set that several steps share is updated by each of
    /// them in turn); in evaluation each step with its set's running statistics.
    /// </summary>
    /// <remarks>
    /// One call instead of one per step: the cell loop normalizes the input products of all steps before it starts, so
    /// the forward and backward passes carry a handful of operations for the whole sequence rather than several per step.
    /// </remarks>
    public Tensor ForwardSteps(Tensor input)
    {
        using var scope = NewDisposeScope();
        return bias.addcmul(StandardizeSteps(input, 0), gain, Scalars.One).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Every step of <paramref name="input"/> [time, batch, features] standardized as <see cref="ForwardSteps"/> does before
    /// gain and bias (in training with batch statistics, updating the running ones; in evaluation with step t's set).
    /// </summary>
    public Tensor StandardizeSteps(Tensor input) => StandardizeSteps(input, 0);

    /// <summary>
    /// Steps <paramref name="firstStep"/>, <paramref name="firstStep"/> + 1, ... of <paramref name="input"/> [time, batch,
    /// features] standardized (before gain and bias), the running statistics updated in training. Batch statistics are averages taken as a [1, batch] x [batch, features] product: libtorch's CPU
    /// reductions over the batch dimension (and its batch_norm) take twice as long at the cell loop's shapes.
    /// </summary>
    private Tensor StandardizeSteps(Tensor input, int firstStep)
    {
        long time = input.shape[0], batch = input.shape[1];
        if (training && batch < 2)
            throw new InvalidOperationException(
                $"Recurrent batch normalization needs at least 2 sequences per batch in training; got a batch of {batch}. " +
                "Use a batch size of 2 or more, QuantizedRecurrentOptions.Normalization = Layer or Weight, or evaluation mode.");
        using var scope = NewDisposeScope();
        using var epsilon = Epsilon.ToScalar();
        Tensor centered, variance;
        if (training)
        {
            using var share = (1.0 / batch).ToScalar();
            var average = full(1, batch, share, dtype: input.dtype, device: input.device);
            var mean = average.matmul(input);
            centered = input - mean;
            variance = average.matmul(centered * centered);
            using (no_grad()) UpdateRunningStatistics(mean.squeeze(1), variance.squeeze(1), batch, firstStep);
        }
        else
        {
            using var first = firstStep.ToScalar();
            using var end = (firstStep + time).ToScalar();
            using var lastSet = (Steps - 1).ToScalar();
            var sets = arange(first, end, Scalars.One, dtype: ScalarType.Int64, device: input.device).clamp_max(lastSet);
            centered = input - RunningMean.index_select(0, sets).unsqueeze(1);
            variance = RunningVar.index_select(0, sets).unsqueeze(1);
        }
        return (centered * variance.add(epsilon, Scalars.One).rsqrt()).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The running averages after the batch means and biased variances [time, features] of steps
    /// <paramref name="firstStep"/>.. were folded in one step after another (momentum m, unbiased variance): a set used by
    /// one step gets <c>(1 - m) r + m s</c>; the last set, shared by the steps from <c>Steps - 1</c> on, gets
    /// <c>(1 - m)^j r + sum_i m (1 - m)^(j-1-i) s_i</c> over its j steps.
    /// </summary>
    internal void UpdateRunningStatistics(Tensor means, Tensor biasedVariances, long batch, int firstStep)
    {
        long time = means.shape[0];
        using var unbias = ((double)batch / (batch - 1)).ToScalar();
        var variances = biasedVariances.mul(unbias);
        long own = Math.Clamp(Steps - 1 - firstStep, 0, time); // steps before the last set each have a set of their own
        if (own > 0) FoldInOrder(firstStep, means.narrow(0, 0, own), variances.narrow(0, 0, own), sharedSteps: false);
        if (time > own) FoldInOrder(Steps - 1, means.narrow(0, own, time - own), variances.narrow(0, own, time - own), sharedSteps: true);
    }
    /// <summary>
    /// The weights [steps, 1] with which one set of running statistics shared by steps 0..steps-1 takes in their batch
    /// statistics when it folds them in order with <paramref name="momentum"/> m: step i gets <c>m (1 - m)^(steps-1-i)</c>,
    /// and what the set held before keeps <c>(1 - m)^steps</c>.
    /// </summary>
    internal static Tensor FoldWeights(long steps, double momentum, ScalarType dtype, Device device)
    {
        var weights = new double[steps];
        for (long i = 0; i < steps; i++) weights[i] = momentum * Math.Pow(1 - momentum, steps - 1 - i);
        return tensor(weights, dtype: dtype, device: device).unsqueeze(1);
    }

    private void FoldInOrder(long firstSet, Tensor means, Tensor variances, bool sharedSteps)
    {
        long steps = means.shape[0];
        if (!sharedSteps)
        {
            using var keep = (1 - Momentum).ToScalar();
            using var momentum = Momentum.ToScalar();
            RunningMean.narrow(0, firstSet, steps).mul_(keep).add_(means, momentum);
            RunningVar.narrow(0, firstSet, steps).mul_(keep).add_(variances, momentum);
            return;
        }
        var w = FoldWeights(steps, Momentum, means.dtype, means.device);
        using var decay = Math.Pow(1 - Momentum, steps).ToScalar();
        RunningMean.narrow(0, firstSet, 1).mul_(decay).add_((means * w).sum(0, keepdim: true), Scalars.One);
        RunningVar.narrow(0, firstSet, 1).mul_(decay).add_((variances * w).sum(0, keepdim: true), Scalars.One);
    }
}
