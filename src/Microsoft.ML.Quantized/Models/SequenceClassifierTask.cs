using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized;

/// <summary>
/// Sequence classification for <see cref="TrainingLoop"/>: mini-batches of labelled examples, reshuffled every
/// epoch with a generator seeded by the epoch seed (so a resumed run replays the same order), padded to the
/// batch's longest sequence; mean cross-entropy per example.
/// </summary>
internal sealed class SequenceClassifierTask : TrainingTask
{
    private readonly SequenceClassifierNetwork _network;
    private readonly SequenceClassifierData _train;
    private readonly SequenceClassifierData? _validation;
    private readonly int _batchSize;
    private readonly int _seed;
    private readonly Device _device;
    private readonly int[] _order;

    public SequenceClassifierTask(SequenceClassifierNetwork network, SequenceClassifierData train, SequenceClassifierData? validation,
        int batchSize, int seed, Device device)
    {
        if (train.Labels is null) throw new ArgumentException("Training data needs labels.", nameof(train));
        if (validation is not null && validation.Labels is null) throw new ArgumentException("Validation data needs labels.", nameof(validation));
        _network = network;
        _train = train;
        _validation = validation;
        _batchSize = batchSize;
        _seed = seed;
        _device = device;
        _order = Enumerable.Range(0, train.Count).ToArray();
    }

    public override nn.Module Network => _network;

    public override int StepsPerEpoch => (_train.Count + _batchSize - 1) / _batchSize;

    public override IEnumerable<(Tensor Weight, Quantizer Quantizer)> QuantizedWeights =>
        _network.WeightMatrices().Select(m => (m.Weight, m.Quantizer));

    /// <summary>The example order of the current epoch (for tests).</summary>
    internal IReadOnlyList<int> Order => _order;

    public override void BeginEpoch(int epoch)
    {
        for (int i = 0; i < _order.Length; i++) _order[i] = i;
        var random = new Random(unchecked((int)TrainingLoop.EpochSeed(_seed, epoch)) & int.MaxValue);
        for (int i = _order.Length - 1; i > 0; i--)
        {
            int j = random.Next(i + 1);
            (_order[i], _order[j]) = (_order[j], _order[i]);
        }
    }

    public override (Tensor Loss, long Units) TrainingLoss(int step)
    {
        int start = step * _batchSize;
        var indices = _order.AsSpan(start, Math.Min(_batchSize, _order.Length - start));
        var (input, lengths, labels) = _train.Batch(indices, _device);
        var logits = _network.Forward(input, lengths);
        return (nn.functional.cross_entropy(logits, labels!), indices.Length);
    }

    public override double? ValidationLoss(CancellationToken cancellationToken) =>
        _validation is null ? null : MeanCrossEntropy(_network, _validation, _device, cancellationToken);

    /// <summary>Mean cross-entropy (nats per example) over every example; call under no_grad + eval.</summary>
    public static double MeanCrossEntropy(SequenceClassifierNetwork network, SequenceClassifierData data, Device device, CancellationToken cancellationToken = default)
    {
        var logProbabilities = LogProbabilities(network, data, device, cancellationToken);
        int classes = network.ClassCount;
        double total = 0;
        for (int i = 0; i < data.Count; i++) total -= logProbabilities[(long)i * classes + data.Labels![i]];
        return total / Math.Max(1, data.Count);
    }

    /// <summary>Examples per batch in evaluation and prediction.</summary>
    public const int EvaluationBatchSize = 256;

    /// <summary>
    /// Log-softmax of every example's logits, flat [count * classes] in the data's order, in batches of
    /// <see cref="EvaluationBatchSize"/> examples of similar lengths (sorted, so little padding); call under
    /// no_grad + eval.
    /// </summary>
    public static float[] LogProbabilities(SequenceClassifierNetwork network, SequenceClassifierData data, Device device, CancellationToken cancellationToken = default)
    {
        int classes = network.ClassCount;
        var result = new float[(long)data.Count * classes];
        var byLength = Enumerable.Range(0, data.Count).OrderBy(data.Steps).ToArray();
        for (int start = 0; start < data.Count; start += EvaluationBatchSize)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var scope = torch.NewDisposeScope();
            int count = Math.Min(EvaluationBatchSize, data.Count - start);
            var indices = byLength.AsSpan(start, count);
            var (input, lengths, _) = data.Batch(indices, device);
            var values = nn.functional.log_softmax(network.Forward(input, lengths), 1).to(torch.CPU).contiguous().data<float>().ToArray();
            for (int b = 0; b < count; b++) Array.Copy(values, (long)b * classes, result, (long)indices[b] * classes, classes);
        }
        return result;
    }
}
