namespace Microsoft.ML.Quantized;

/// <summary>
/// Training produced a non-finite (NaN or infinite) or exploding loss or gradient and was stopped; the model
/// keeps the weights of the last good checkpoint or epoch.
/// </summary>
public sealed class TrainingDivergedException : Exception
{
    /// <summary>The advice of the public constructor: the settings that most often stop a divergence.</summary>
    internal const string GeneralAdvice = "Lower the LearningRate, set GradientClipNorm (e.g. 0.25), or enable in-cell normalization " +
        "(QuantizedRecurrentOptions.Normalization = Layer or Weight), which binary and ternary weights need to train stably.";

    /// <summary>Creates the exception for a given epoch and step.</summary>
    public TrainingDivergedException(int epoch, int step, string quantity, double value)
        : this(epoch, step, quantity, value, GeneralAdvice)
    {
    }

    /// <summary>Creates the exception with <paramref name="advice"/> fitted to the network that diverged.</summary>
    internal TrainingDivergedException(int epoch, int step, string quantity, double value, string advice)
        : base($"Training diverged at epoch {epoch}, step {step}: the {quantity} is {value}. {advice}")
    {
        Epoch = epoch;
        Step = step;
        Quantity = quantity;
        Value = value;
    }

    /// <summary>Epoch (1-based) where training stopped.</summary>
    public int Epoch { get; }

    /// <summary>Step within the epoch (1-based).</summary>
    public int Step { get; }

    /// <summary>What was non-finite: "loss" or "gradient norm".</summary>
    public string Quantity { get; }

    /// <summary>The offending value.</summary>
    public double Value { get; }
}
