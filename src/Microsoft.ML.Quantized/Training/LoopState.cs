using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized;

/// <summary>Everything <see cref="TrainingLoop"/> needs to continue after an epoch; what a checkpoint stores.</summary>
internal sealed class LoopState
{
    public LoopState(double learningRate)
    {
        LearningRate = learningRate;
    }

    public int EpochsDone { get; set; }

    /// <summary>First epoch run by this process (after a resume, the one after the checkpoint).</summary>
    public int FirstEpochThisRun => EpochsDoneAtStart + 1;

    /// <summary>Epochs already done when this process started (restored from a checkpoint).</summary>
    public int EpochsDoneAtStart { get; set; }

    public double LearningRate { get; set; }

    public double BestLoss { get; set; } = double.PositiveInfinity;

    public int EpochsWithoutImprovement { get; set; }

    public bool Stopped { get; set; }

    public List<EpochSummary> History { get; } = new();

    public byte[]? BestWeights { get; set; }

    /// <summary>
    /// Applies the end-of-epoch rules: keep the best weights; on no improvement divide the learning rate by
    /// the decay and count toward early stopping.
    /// </summary>
    public void EndEpoch(int epoch, double loss, nn.Module network, TrainingOptions options)
    {
        EpochsDone = epoch;
        if (loss < BestLoss)
        {
            BestLoss = loss;
            BestWeights = TrainingLoop.SaveWeights(network);
            EpochsWithoutImprovement = 0;
            return;
        }
        EpochsWithoutImprovement++;
        if (options.LearningRateDecay > 1) LearningRate /= options.LearningRateDecay;
        if (options.EarlyStoppingPatience > 0 && EpochsWithoutImprovement >= options.EarlyStoppingPatience) Stopped = true;
    }
}
