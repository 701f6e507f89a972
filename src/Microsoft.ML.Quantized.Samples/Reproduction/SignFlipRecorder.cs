using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized.Samples.Reproduction;

/// <summary>
/// Li et al. 2017 (REPRODUCTION.md, "Training quantized nets", question 3): the share of deployed weights that change sign
/// from one epoch to the next. Wraps a training task; at the end of every epoch (when the loop asks for the validation
/// loss, in evaluation mode) it reads the sign of each quantized weight as deployed (the quantizer's evaluation output) and
/// compares it with the previous epoch's, starting from the initial weights.
/// </summary>
internal sealed class SignFlipRecorder : TrainingTask, IDisposable
{
    private readonly TrainingTask inner;
    private readonly (string Name, Tensor Weight, Quantizer Quantizer)[] weights;
    private readonly Tensor[] previous;
    private readonly List<IReadOnlyDictionary<string, double>> rates = new();

    /// <param name="inner">The task trained.</param>
    /// <param name="weights">The weights to watch, by name, with their quantizers.</param>
    public SignFlipRecorder(TrainingTask inner, IEnumerable<(string Name, Tensor Weight, Quantizer Quantizer)> weights)
    {
        this.inner = inner;
        this.weights = weights.ToArray();
        previous = this.weights.Select(w => DeployedSigns(w.Weight, w.Quantizer)).ToArray();
    }

    /// <summary>Per finished epoch, the share of each weight's elements whose deployed sign changed during it (0-1).</summary>
    public IReadOnlyList<IReadOnlyDictionary<string, double>> Rates => rates;

    /// <inheritdoc/>
    public override nn.Module Network => inner.Network;

    /// <inheritdoc/>
    public override int StepsPerEpoch => inner.StepsPerEpoch;

    /// <inheritdoc/>
    public override IEnumerable<(Tensor Weight, Quantizer Quantizer)> QuantizedWeights => inner.QuantizedWeights;

    /// <inheritdoc/>
    public override void BeginEpoch(int epoch) => inner.BeginEpoch(epoch);

    /// <inheritdoc/>
    public override (Tensor Loss, long Units) TrainingLoss(int step) => inner.TrainingLoss(step);

    /// <inheritdoc/>
    public override double? ValidationLoss(CancellationToken cancellationToken)
    {
        var epochRates = new Dictionary<string, double>();
        for (int k = 0; k < weights.Length; k++)
        {
            var signs = DeployedSigns(weights[k].Weight, weights[k].Quantizer);
            epochRates[weights[k].Name] = FlipShare(previous[k], signs);
            previous[k].Dispose();
            previous[k] = signs;
        }
        rates.Add(epochRates);
        return inner.ValidationLoss(cancellationToken);
    }

    /// <summary>The share of elements whose sign differs between <paramref name="before"/> and <paramref name="after"/> (0 counts as a sign).</summary>
    public static double FlipShare(Tensor before, Tensor after)
    {
        using var scope = NewDisposeScope();
        return before.ne(after).to_type(ScalarType.Float64).mean().item<double>();
    }

    /// <summary>The sign (-1, 0, +1) of the weight as deployed: its quantizer's output in evaluation mode, kept out of any graph.</summary>
    public static Tensor DeployedSigns(Tensor weight, Quantizer quantizer)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        bool wasTraining = quantizer.training;
        quantizer.eval();
        var signs = quantizer.forward(weight.detach()).sign();
        if (wasTraining) quantizer.train();
        return signs.MoveToOuterDisposeScope();
    }

    /// <summary>Releases the stored signs (the inner task is the caller's).</summary>
    public void Dispose()
    {
        foreach (var t in previous) t.Dispose();
    }
}
