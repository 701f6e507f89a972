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
    private readonly Tensor runningMean;
    private readonly Tensor runningVar;

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
        runningMean = zeros(steps, features);
        runningVar = ones(steps, features);
        register_parameter("gain", gain);
        register_parameter("bias", bias);
        register_buffer("running_mean", runningMean);
        register_buffer("running_var", runningVar);
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
    public Tensor RunningMean => runningMean;

    /// <summary>Running variances, shape [steps, features].</summary>
    public Tensor RunningVar => runningVar;

    /// <summary>
    /// Normalizes <paramref name="input"/> (shape [batch, features]) of time step <paramref name="step"/>
    /// (0-based). Throws <see cref="InvalidOperationException"/> in training when the batch has one row.
    /// </summary>
    public Tensor Forward(Tensor input, int step)
    {
        if (training && input.shape[0] < 2)
            throw new InvalidOperationException(
                $"Recurrent batch normalization needs at least 2 sequences per batch in training; got a batch of {input.shape[0]}. " +
                "Use a batch size of 2 or more, QuantizedRecurrentOptions.Normalization = Layer or Weight, or evaluation mode.");
        using var scope = NewDisposeScope();
        long set = Math.Min(Math.Max(step, 0), Steps - 1);
        // Row views of the buffers: batch_norm updates them in place, which writes through to the buffers.
        var mean = runningMean[set];
        var variance = runningVar[set];
        return nn.functional.batch_norm(input, mean, variance, gain, bias, training, Momentum, Epsilon).MoveToOuterDisposeScope();
    }
}
