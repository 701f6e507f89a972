using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized.Samples.Reproduction;

/// <summary>
/// Hou et al. (2019) found batch normalization with one set of statistics shared across time steps to fail on sequential
/// MNIST (REPRODUCTION.md, their question 3). In training both forms normalize each step with its own batch statistics;
/// they differ only in what evaluation uses. This reads a per-step model's running statistics (one set per step) and
/// the single set that shared statistics would hold for the same model: every training batch folds the steps' statistics
/// into it in order, <c>r = (1 - m) r + m s_t</c> with momentum m, whose fixed point weights step t by
/// <c>m (1 - m)^(T-1-t) / (1 - (1 - m)^T)</c> (the last ~1/m steps dominate). At step t the shared set turns a value of
/// mean <c>mu_t</c> and standard deviation <c>sd_t</c> into one of mean <c>(mu_t - mu_s) / sd_s</c> and standard
/// deviation <c>sd_t / sd_s</c> instead of 0 and 1.
/// </summary>
internal static class SharedBatchNormStatistics
{
    /// <summary>
    /// The shared running statistics [features] that folding steps 0..T-1 of <paramref name="means"/> and
    /// <paramref name="variances"/> ([T, features]) in order, batch after batch, converges to with
    /// <paramref name="momentum"/>: the weighted average with weights <c>m (1 - m)^(T-1-t) / (1 - (1 - m)^T)</c>.
    /// </summary>
    public static (Tensor Mean, Tensor Variance) Fold(Tensor means, Tensor variances, double momentum)
    {
        if (momentum <= 0 || momentum > 1) throw new ArgumentOutOfRangeException(nameof(momentum), momentum, "Momentum must be in (0, 1].");
        long steps = means.shape[0];
        using var scope = NewDisposeScope();
        using var total = (1 - Math.Pow(1 - momentum, steps)).ToScalar();
        var w = RecurrentBatchNorm.FoldWeights(steps, momentum, means.dtype, means.device).div(total);
        return ((w * means).sum(0, keepdim: false).MoveToOuterDisposeScope(), (w * variances).sum(0, keepdim: false).MoveToOuterDisposeScope());
    }

    /// <summary>
    /// For steps 0..<paramref name="steps"/>-1 of <paramref name="norm"/> (a per-step normalization): the mean over features
    /// of <c>|mu_t - mu_s| / sd_s</c> (the mean offset the shared set leaves in the normalized value, in units of the
    /// shared standard deviation) and of <c>sd_t / sd_s</c> (the standard deviation it leaves; 1 is right), with
    /// <c>sd = sqrt(var + epsilon)</c> as the normalization computes it and the shared set from <see cref="Fold"/>.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="norm"/> holds fewer than <paramref name="steps"/> sets.</exception>
    public static StepDeviation[] Deviations(RecurrentBatchNorm norm, int steps)
    {
        if (steps < 1 || norm.Steps < steps)
            throw new ArgumentException($"The normalization holds {norm.Steps} set(s) of statistics; {steps} per-step sets were asked for.", nameof(steps));
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var means = norm.RunningMean[..steps].to_type(ScalarType.Float64);
        var variances = norm.RunningVar[..steps].to_type(ScalarType.Float64);
        var (sharedMean, sharedVariance) = Fold(means, variances, norm.Momentum);
        using var epsilon = norm.Epsilon.ToScalar();
        var sharedSd = sharedVariance.add(epsilon, Scalars.One).sqrt();
        var offset = ((means - sharedMean).abs() / sharedSd).mean([1]).data<double>().ToArray();
        var scale = (variances.add(epsilon, Scalars.One).sqrt() / sharedSd).mean([1]).data<double>().ToArray();
        return Enumerable.Range(0, steps).Select(t => new StepDeviation(t, offset[t], scale[t])).ToArray();
    }

    /// <summary>
    /// Sequence-steps scored at once (500 images row by row, 17 pixel by pixel): each holds 4H floats in several
    /// temporaries, so a fixed count of images would need gigabytes a chunk at 784 steps.
    /// </summary>
    private const int ChunkFrames = 14_000;

    /// <summary>
    /// Per step, over <paramref name="sequences"/> (each <c>steps x frameSize</c> values, read as frames): the largest
    /// |z| of the cell's input-side normalization in evaluation, <c>z = (W_x x_t - mu_t) / sqrt(var_t + epsilon)</c> with
    /// the effective (quantized) <c>W_x</c> and the running statistics evaluation uses at step t (the shared set, or the
    /// last set past the last one), and the share of sequences with some |z| above <paramref name="bound"/>. The cell is
    /// put in evaluation mode for this and back in its mode after. In training a batch-normalized value never exceeds sqrt(batch - 1) in magnitude
    /// (the batch's own statistics include it), so values above that bound are ones only evaluation produces.
    /// </summary>
    public static StepScores[] InputScores(QuantizedRecurrentCell cell, IReadOnlyList<float[]> sequences, int frameSize, double bound)
    {
        var norm = cell.InputBatchNorm ?? throw new ArgumentException("The cell has no input-side batch normalization.", nameof(cell));
        int steps = sequences[0].Length / frameSize;
        var largest = new double[steps];
        var above = new long[steps];
        bool wasTraining = cell.training;
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        using var threshold = bound.ToScalar();
        cell.eval();
        try
        {
            var weightIhT = cell.EffectiveWeights().WeightIh.t();
            foreach (var chunk in sequences.Chunk(Math.Max(1, ChunkFrames / steps)))
            {
                using var chunkScope = NewDisposeScope();
                var frames = tensor(chunk.SelectMany(x => x).ToArray()).reshape(chunk.Length, steps, frameSize).transpose(0, 1);
                var z = norm.StandardizeSteps(frames.matmul(weightIhT)).abs(); // [time, sequences, features]
                var chunkLargest = z.amax([1, 2]).to_type(ScalarType.Float64).data<double>().ToArray();
                var chunkAbove = z.amax([2]).gt(threshold).sum([1]).data<long>().ToArray();
                for (int t = 0; t < steps; t++)
                {
                    largest[t] = Math.Max(largest[t], chunkLargest[t]);
                    above[t] += chunkAbove[t];
                }
            }
        }
        finally
        {
            cell.train(wasTraining);
        }
        return Enumerable.Range(0, steps).Select(t => new StepScores(t, largest[t], (double)above[t] / sequences.Count)).ToArray();
    }

    /// <summary>
    /// Re-estimates <paramref name="network"/>'s running statistics with its current weights: the first
    /// <paramref name="batches"/> x <paramref name="batchSize"/> of <paramref name="frames"/> forward without gradients, the
    /// recurrent cells in training mode and everything else (dropout, every quantizer) in evaluation mode, as the library's
    /// <see cref="TrainingOptions.BatchNormRecalibrationSteps"/> does (each batch folds its statistics in with the normalization's momentum, so after 100 batches at momentum
    /// 0.1 what the sets held before weighs 0.9^100, about 3e-5). Leaves the network in evaluation mode.
    /// </summary>
    /// <exception cref="ArgumentException">Fewer than <paramref name="batches"/> x <paramref name="batchSize"/> sequences.</exception>
    public static void Recalibrate(SequenceClassifierNetwork network, IReadOnlyList<float[]> frames, int frameSize, int batches, int batchSize)
    {
        if (frames.Count < batches * batchSize)
            throw new ArgumentException($"Recalibration needs {batches * batchSize} sequences; got {frames.Count}.", nameof(frames));
        var data = SequenceClassifierData.FromFrames(frames, null, frameSize, network.ClassCount, nameof(frames));
        BatchNormRecalibration.Run(network, batches, b =>
        {
            var (input, lengths, _) = data.Batch(Enumerable.Range(b * batchSize, batchSize).ToArray(), CPU);
            network.Forward(input, lengths);
        });
    }

    /// <summary>
    /// Replaces every set of <paramref name="norm"/>'s running statistics with the shared set folded from its first
    /// <paramref name="steps"/> sets: the same weights then evaluate as a shared-statistics model would.
    /// </summary>
    public static void ShareStatistics(RecurrentBatchNorm norm, int steps)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var (mean, variance) = Fold(norm.RunningMean[..steps], norm.RunningVar[..steps], norm.Momentum);
        norm.RunningMean.copy_(mean.unsqueeze(0).expand_as(norm.RunningMean));
        norm.RunningVar.copy_(variance.unsqueeze(0).expand_as(norm.RunningVar));
    }
}

/// <summary>What shared statistics do to one step's normalized values (see <see cref="SharedBatchNormStatistics"/>).</summary>
/// <param name="Step">Time step (0-based).</param>
/// <param name="MeanOffset">Mean over features of <c>|mu_t - mu_s| / sd_s</c> (0 is right).</param>
/// <param name="ScaleRatio">Mean over features of <c>sd_t / sd_s</c> (1 is right).</param>
internal sealed record StepDeviation(int Step, double MeanOffset, double ScaleRatio);

/// <summary>Input-side normalized values of one step in evaluation (see <see cref="SharedBatchNormStatistics.InputScores"/>).</summary>
/// <param name="Step">Time step (0-based).</param>
/// <param name="Largest">Largest |z| over the sequences and features.</param>
/// <param name="ShareAboveBound">Share of sequences with some |z| above the bound.</param>
internal sealed record StepScores(int Step, double Largest, double ShareAboveBound);
