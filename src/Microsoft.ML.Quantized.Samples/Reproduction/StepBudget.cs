namespace Microsoft.ML.Quantized.Samples.Reproduction;

/// <summary>
/// Li et al.'s question 4 at an equal step budget: how many epochs a batch size needs on a character stream to take as many
/// optimizer steps as another (larger batches take fewer steps per epoch, so more epochs).
/// </summary>
internal static class StepBudget
{
    /// <summary>
    /// Optimizer steps in one epoch over <paramref name="characters"/> training characters at <paramref name="batch"/>
    /// streams of <paramref name="sequenceLength"/>-character windows, capped at <paramref name="maxSteps"/> (0 = no cap).
    /// </summary>
    public static int StepsPerEpoch(int characters, int batch, int sequenceLength, int maxSteps)
    {
        int windows = TokenStreamBatcher.WindowsPerPass(characters, batch, sequenceLength);
        return maxSteps > 0 ? Math.Min(maxSteps, windows) : windows;
    }

    /// <summary>The whole number of epochs of <paramref name="stepsPerEpoch"/> steps nearest to <paramref name="budget"/> steps (at least one; halves round up).</summary>
    public static int Epochs(int budget, int stepsPerEpoch) => Math.Max(1, (int)Math.Round(budget / (double)stepsPerEpoch, MidpointRounding.AwayFromZero));
}
