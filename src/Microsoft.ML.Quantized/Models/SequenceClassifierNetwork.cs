using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized;

/// <summary>
/// (Embedding | frames) -> quantized recurrent stack -> last layer's outputs pooled over each sequence's steps
/// (<see cref="SequenceClassifierOptions.Pooling"/>) -> dropout -> linear head, as one torch module.
/// </summary>
/// <remarks>
/// Padded batches: the recurrent stack is causal, so its outputs at steps <c>0 .. length - 1</c> of a sequence do
/// not depend on the padding after them; taking the output at step <c>length - 1</c>, or the mean or maximum over
/// those steps only, gives the same answer as running the sequence alone (in evaluation mode; batch normalization's
/// training statistics do see the padding).
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
    private readonly double initialStateNoise;
    private readonly SequencePooling pooling;

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
        initialStateNoise = options.InitialStateNoise;
        pooling = options.Pooling;
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

    /// <summary>How the last layer's outputs become the head's input.</summary>
    public SequencePooling Pooling => pooling;

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
        var start = InitialState(x.shape[1], x.dtype, x.device);
        var (output, _) = recurrent.Forward(x, start);
        var final = Pool(output, lengths);
        if (training && dropout > 0) final = TrainingRandom.Dropout(final, dropout);
        var logits = nn.functional.linear(final, headQuantizer.forward(headWeight), headBias);
        return logits.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// In training with <see cref="SequenceClassifierOptions.InitialStateNoise"/> &gt; 0: hidden states drawn from
    /// N(0, noise^2) [layers, batch, hidden] and zero cell states; otherwise null (the stack starts from zeros).
    /// </summary>
    private RecurrentState? InitialState(long batch, ScalarType dtype, Device device)
    {
        if (!training || initialStateNoise <= 0) return null;
        long[] shape = [recurrent.LayerCount, batch, recurrent.HiddenSize];
        using var scope = torch.NewDisposeScope();
        using var noise = initialStateNoise.ToScalar();
        var h = TrainingRandom.Randn(shape, dtype, device).mul_(noise);
        var c = recurrent.Cell == RecurrentCellKind.Lstm ? torch.zeros(shape, dtype, device) : null;
        return new RecurrentState(h, c).MoveToOuterDisposeScope();
    }

    /// <summary>The head's input [batch, hidden] from the outputs [time, batch, hidden] at each sequence's steps <c>0 .. length - 1</c>.</summary>
    private Tensor Pool(Tensor output, Tensor lengths)
    {
        long time = output.shape[0], batch = output.shape[1], hidden = output.shape[2];
        if (pooling == SequencePooling.Last)
            return output.gather(0, lengths.sub(Scalars.One).reshape(1, batch, 1).expand(1, batch, hidden)).squeeze(0);
        using var steps = time.ToScalar();
        var valid = torch.arange(Scalars.Zero, steps, Scalars.One, dtype: ScalarType.Int64, device: output.device).reshape(time, 1, 1).lt(lengths.reshape(1, batch, 1));
        return pooling == SequencePooling.Mean
            ? output.mul(valid).sum(0L).div(lengths.reshape(batch, 1).to_type(output.dtype))
            : output.masked_fill(valid.logical_not(), Scalars.NegativeInfinity).amax(new long[] { 0 });
    }

    /// <summary>Every weight matrix with its quantizer: the recurrent ones, then embedding (token input) and head.</summary>
    public IEnumerable<(string Name, Tensor Weight, Quantizer Quantizer)> WeightMatrices()
    {
        foreach (var w in recurrent.QuantizedWeights()) yield return w;
        if (embedding is not null) yield return ("embedding", embedding, embeddingQuantizer!);
        yield return ("head.weight", headWeight, headQuantizer);
    }

}
