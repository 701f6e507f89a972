namespace Microsoft.ML.Quantized;

/// <summary>Defaults and bookkeeping of KURE fine-tuning (<see cref="QuantizedLanguageModel.FineTuneWithKure(int[], KureOptions?, int, double, IProgress{TrainingProgress}?, CancellationToken)"/>).</summary>
internal static class KurtosisFineTuning
{
    /// <summary>Fine-tuning learning rate of the paper (Adam).</summary>
    public const double DefaultLearningRate = 1e-3;

    /// <summary>
    /// The training run of the short fine-tuning overloads: Adam at <paramref name="learningRate"/> (Shkolnik et al. fine-tune
    /// with Adam, 1e-3), no decay, the library's batch 20 and clipping 0.25, and the model's own BPTT window.
    /// </summary>
    public static TrainingOptions Training(int epochs, double learningRate, int sequenceLength) => new()
    {
        Epochs = epochs,
        Optimizer = OptimizerKind.Adam,
        LearningRate = learningRate,
        LearningRateDecay = 1,
        SequenceLength = sequenceLength,
    };

    /// <summary>The earlier history followed by the fine-tuning epochs, numbered on from the last earlier epoch.</summary>
    public static IReadOnlyList<EpochSummary> Continue(IReadOnlyList<EpochSummary> before, IReadOnlyList<EpochSummary> fineTuning)
    {
        int offset = before.Count == 0 ? 0 : before[^1].Epoch;
        return before.Concat(fineTuning.Select(e => e with { Epoch = e.Epoch + offset })).ToArray();
    }
}
