using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized;

/// <summary>
/// (Embedding | frames) -> quantized recurrent stack -> last layer's output at each sequence's last step ->
/// dropout -> linear head, as one torch module.
/// </summary>
/// <remarks>
/// Padded batches: the recurrent stack is causal, so the output at step <c>length - 1</c> of a sequence does
/// not depend on the padding after it; gathering there gives the same answer as running the sequence alone
/// (in evaluation mode; batch normalization's training statistics do see the padding).
/// </remarks>
internal sealed class SequenceClassifierNetwork : nn.Module
{
    private readonly Parameter? embedding;
    private readonly Quantizer? embeddingQuantizer;
    private readonly QuantizedRecurrentStack recurrent;
    private readonly Parameter headWeight;
    private readonly Parameter headBias;
    private readonly Quantizer headQuantizer;
    private readonly double dropout;

    /// <param name="kind">Token or frame input.</param>
    /// <param name="inputSize">Vocabulary size (tokens) or frame size (frames).</param>
    /// <param name="options">Validated options.</param>
    public SequenceClassifierNetwork(SequenceClassifierInputKind kind, int inputSize, SequenceClassifierOptions options)
        : base(nameof(SequenceClassifierNetwork))
    {
        int hidden = options.Recurrent.HiddenSize;
        InputKind = kind;
        InputSize = inputSize;
        ClassCount = options.ClassCount;
        dropout = options.Dropout;
        var outerQuantizer = options.QuantizeEmbeddingAndHead ? options.Recurrent.WeightQuantizer : new QuantizerOptions();
        int recurrentInput = inputSize;
        if (kind == SequenceClassifierInputKind.Tokens)
        {
            recurrentInput = options.EmbeddingSize > 0 ? options.EmbeddingSize : hidden;
            embedding = new Parameter(torch.empty(inputSize, recurrentInput));
            var tableQuantizer = options.QuantizeEmbeddingAndHead ? options.EmbeddingQuantizer ?? outerQuantizer : outerQuantizer;
            embeddingQuantizer = QuantizerFactory.Create(tableQuantizer, rows: inputSize);
        }
        recurrent = new QuantizedRecurrentStack(nameof(recurrent), recurrentInput, options.Recurrent);
        headWeight = new Parameter(torch.empty(options.ClassCount, hidden));
        headBias = new Parameter(torch.zeros(options.ClassCount));
        headQuantizer = QuantizerFactory.Create(outerQuantizer, rows: options.ClassCount);
        using (torch.no_grad())
        {
            embedding?.uniform_(-0.1, 0.1, generator: TrainingRandom.For(embedding.device));
            double bound = 1.0 / Math.Sqrt(hidden); // nn.Linear's default range
            headWeight.uniform_(-bound, bound, generator: TrainingRandom.For(headWeight.device));
        }
        RegisterComponents();
    }

    public SequenceClassifierInputKind InputKind { get; }

    /// <summary>Vocabulary size (tokens) or frame size (frames).</summary>
    public int InputSize { get; }

    public int ClassCount { get; }

    public QuantizedRecurrentStack Recurrent => recurrent;

    /// <summary>The embedding table [vocab, embedding] (float shadow weights) and its quantizer; null for frame input.</summary>
    internal (Tensor Weight, Quantizer Quantizer)? Embedding => embedding is null ? null : (embedding, embeddingQuantizer!);

    /// <summary>The head weight [classes, hidden] (float shadow weights), its bias [classes] and its quantizer.</summary>
    internal (Tensor Weight, Tensor Bias, Quantizer Quantizer) Head => (headWeight, headBias, headQuantizer);

    /// <summary>
    /// input: tokens [time, batch] int64 or frames [time, batch, frame] float32; lengths [batch] int64 in
    /// [1, time] (steps of each sequence). Returns logits [batch, classes].
    /// </summary>
    public Tensor Forward(Tensor input, Tensor lengths)
    {
        using var scope = torch.NewDisposeScope();
        var x = input;
        if (embedding is not null)
        {
            var table = embeddingQuantizer!.forward(embedding);
            x = table.index_select(0, input.reshape(-1)).reshape(input.shape[0], input.shape[1], -1);
        }
        var (output, _) = recurrent.Forward(x, null);
        long batch = output.shape[1], hidden = output.shape[2];
        var last = lengths.sub(Scalars.One).reshape(1, batch, 1).expand(1, batch, hidden);
        var final = output.gather(0, last).squeeze(0);
        if (training && dropout > 0) final = TrainingRandom.Dropout(final, dropout);
        var logits = nn.functional.linear(final, headQuantizer.forward(headWeight), headBias);
        return logits.MoveToOuterDisposeScope();
    }

    /// <summary>Every weight matrix with its quantizer: the recurrent ones, then embedding (token input) and head.</summary>
    public IEnumerable<(string Name, Tensor Weight, Quantizer Quantizer)> WeightMatrices()
    {
        foreach (var w in recurrent.QuantizedWeights()) yield return w;
        if (embedding is not null) yield return ("embedding", embedding, embeddingQuantizer!);
        yield return ("head.weight", headWeight, headQuantizer);
    }

}
