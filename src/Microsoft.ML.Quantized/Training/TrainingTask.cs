using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized;

/// <summary>
/// What <see cref="TrainingLoop"/> trains: a network, its batches and its loss. Language models and sequence
/// classifiers each provide one; the loop owns optimizer, clipping, schedule, validation, early stopping,
/// checkpoints, divergence checks and progress.
/// </summary>
internal abstract class TrainingTask
{
    /// <summary>The network being trained.</summary>
    public abstract nn.Module Network { get; }

    /// <summary>Optimizer steps in one full epoch.</summary>
    public abstract int StepsPerEpoch { get; }

    /// <summary>Weights and their quantizers (for training without float shadow weights).</summary>
    public abstract IEnumerable<(Tensor Weight, Quantizer Quantizer)> QuantizedWeights { get; }

    /// <summary>Called at the start of each epoch, after the loop reseeded torch for that epoch.</summary>
    public abstract void BeginEpoch(int epoch);

    /// <summary>
    /// Forward pass of step <paramref name="step"/> (0-based) in training mode: returns the mean loss (scalar,
    /// graph attached) and how many units (tokens or examples) it covers.
    /// </summary>
    public abstract (Tensor Loss, long Units) TrainingLoss(int step);

    /// <summary>Additional loss added to the task loss at every step (KURE); null for none.</summary>
    public Func<Tensor>? Regularizer { get; set; }

    /// <summary>
    /// Validation loss (mean per unit) in evaluation mode, or null when there is no validation data; observes
    /// <paramref name="cancellationToken"/> between batches.
    /// </summary>
    public abstract double? ValidationLoss(CancellationToken cancellationToken);
}
