namespace Microsoft.ML.Quantized;

/// <summary>One epoch of training history.</summary>
/// <param name="Epoch">Epoch number, 1-based.</param>
/// <param name="TrainingLoss">Mean training loss over the epoch.</param>
/// <param name="ValidationLoss">Validation loss after the epoch, or NaN without validation data.</param>
/// <param name="LearningRate">Learning rate used during the epoch.</param>
/// <param name="UnitsPerSecond">Training throughput (tokens or examples per second).</param>
/// <param name="Seconds">Wall-clock seconds the epoch took.</param>
/// <param name="MeanGradientNorm">
/// Mean over the epoch's steps of the global L2 norm of every parameter's gradient, before clipping
/// (<c>TrainingOptions.GradientClipNorm</c>): what Hou et al. 2019 follow for exploding gradients. NaN in histories
/// saved before it was recorded.
/// </param>
/// <param name="MaxGradientNorm">The largest of those norms in the epoch (NaN in histories saved before it was recorded).</param>
public sealed record EpochSummary(int Epoch, double TrainingLoss, double ValidationLoss, double LearningRate, double UnitsPerSecond, double Seconds,
    double MeanGradientNorm = double.NaN, double MaxGradientNorm = double.NaN);
