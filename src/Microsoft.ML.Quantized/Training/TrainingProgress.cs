namespace Microsoft.ML.Quantized;

/// <summary>A progress report from training, sent through <see cref="IProgress{T}"/>.</summary>
/// <param name="Epoch">Current epoch, 1-based.</param>
/// <param name="Epochs">Epochs planned.</param>
/// <param name="Step">Optimizer step within the epoch, 1-based.</param>
/// <param name="StepsPerEpoch">Steps in one epoch.</param>
/// <param name="Loss">Mean training loss (nats per token or per example) since the epoch began.</param>
/// <param name="LearningRate">Current learning rate.</param>
/// <param name="UnitsPerSecond">Training throughput: tokens per second for language models, examples per second for classifiers.</param>
/// <param name="Elapsed">Time since training started (this run).</param>
/// <param name="Remaining">Estimated time to finish all epochs.</param>
/// <param name="ValidationLoss">Validation loss, set on the report that ends an epoch when validation data is present.</param>
public sealed record TrainingProgress(
    int Epoch,
    int Epochs,
    int Step,
    int StepsPerEpoch,
    double Loss,
    double LearningRate,
    double UnitsPerSecond,
    TimeSpan Elapsed,
    TimeSpan Remaining,
    double? ValidationLoss = null)
{
    /// <summary>True for the report that ends an epoch.</summary>
    public bool IsEpochEnd => Step == StepsPerEpoch;

    /// <summary>Fraction of all training done, in [0, 1].</summary>
    public double Fraction => ((Epoch - 1) + (double)Step / Math.Max(1, StepsPerEpoch)) / Math.Max(1, Epochs);
}
