using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized;

/// <summary>Truncated-BPTT language-model training: hidden state carries across windows, detached.</summary>
internal sealed class LanguageModelTask : TrainingTask, IDisposable
{
    private readonly LanguageModelNetwork _network;
    private readonly TokenStreamBatcher _train;
    private readonly TokenStreamBatcher? _validation;
    private RecurrentState? _state;

    public LanguageModelTask(LanguageModelNetwork network, TokenStreamBatcher train, TokenStreamBatcher? validation)
    {
        _network = network;
        _train = train;
        _validation = validation;
    }

    public override nn.Module Network => _network;

    /// <summary>Probability of zeroing each stream's carried state before a training window (<see cref="TrainingOptions.StateResetProbability"/>).</summary>
    public double StateResetProbability { get; init; }

    public override int StepsPerEpoch => _train.WindowCount;

    public override IEnumerable<(Tensor Weight, Quantizer Quantizer)> QuantizedWeights =>
        _network.WeightMatrices().Select(m => (m.Weight, m.Quantizer));

    public override void BeginEpoch(int epoch)
    {
        _state?.Dispose();
        _state = null;
    }

    public override (Tensor Loss, long Units) TrainingLoss(int step)
    {
        var (input, target) = _train.Window(step);
        var (logits, next) = _network.Forward(input, StateResetProbability > 0 && _state is not null ? WithStreamsReset(_state, StateResetProbability) : _state);
        _state?.Dispose();
        _state = next.Detach().DetachFromDisposeScope();
        var loss = nn.functional.cross_entropy(logits.reshape(-1, _network.VocabularySize), target.reshape(-1));
        return (loss, target.numel());
    }

    /// <summary>
    /// The state with each stream (batch column) zeroed in every layer, h and c together, with probability
    /// <paramref name="probability"/>, drawn from the run's random source; new tensors in the current dispose scope.
    /// </summary>
    internal static RecurrentState WithStreamsReset(RecurrentState state, double probability)
    {
        using var keep = torch.empty(new[] { 1L, state.H.shape[1], 1L }, state.H.dtype, state.H.device)
            .bernoulli_(1 - probability, generator: TrainingRandom.For(state.H.device));
        return new RecurrentState(state.H.mul(keep), state.C?.mul(keep));
    }

    public override double? ValidationLoss(CancellationToken cancellationToken) =>
        _validation is null ? null : MeanCrossEntropy(_network, _validation, cancellationToken);

    /// <summary>Mean cross-entropy (nats per token) over every window, state carried; call under no_grad + eval.</summary>
    public static double MeanCrossEntropy(LanguageModelNetwork network, TokenStreamBatcher data, CancellationToken cancellationToken = default)
    {
        double total = 0;
        long count = 0;
        RecurrentState? state = null;
        try
        {
            for (int i = 0; i < data.WindowCount; i++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                using var scope = torch.NewDisposeScope();
                var (input, target) = data.Window(i);
                var (logits, next) = network.Forward(input, state);
                state?.Dispose();
                state = next.DetachFromDisposeScope();
                using var loss = nn.functional.cross_entropy(logits.reshape(-1, network.VocabularySize), target.reshape(-1), reduction: nn.Reduction.Sum);
                total += loss.item<float>();
                count += target.numel();
            }
        }
        finally
        {
            state?.Dispose();
        }
        return total / Math.Max(1, count);
    }

    public void Dispose()
    {
        _state?.Dispose();
        _state = null;
    }
}
