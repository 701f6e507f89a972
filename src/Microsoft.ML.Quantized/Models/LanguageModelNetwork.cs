using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized;

/// <summary>Embedding, quantized recurrent stack and decoder as one torch module.</summary>
internal sealed class LanguageModelNetwork : nn.Module
{
    private readonly Parameter embedding;
    private readonly Quantizer embeddingQuantizer;
    private readonly double embeddingDropout;
    private readonly QuantizedRecurrentStack recurrent;
    private readonly Parameter decoderWeight;
    private readonly Parameter decoderBias;
    private readonly Quantizer decoderQuantizer;

    public LanguageModelNetwork(int vocabularySize, LanguageModelOptions options) : base(nameof(LanguageModelNetwork))
    {
        int hidden = options.Recurrent.HiddenSize;
        int embeddingSize = options.EmbeddingSize > 0 ? options.EmbeddingSize : hidden;
        VocabularySize = vocabularySize;
        embedding = new Parameter(torch.empty(vocabularySize, embeddingSize));
        embeddingDropout = options.EmbeddingDropout;
        recurrent = new QuantizedRecurrentStack(nameof(recurrent), embeddingSize, options.Recurrent);
        decoderWeight = new Parameter(torch.empty(vocabularySize, hidden));
        decoderBias = new Parameter(torch.zeros(vocabularySize));
        var outerQuantizer = options.QuantizeEmbeddingAndDecoder ? options.Recurrent.WeightQuantizer : new QuantizerOptions();
        embeddingQuantizer = QuantizerFactory.Create(outerQuantizer, rows: vocabularySize);
        decoderQuantizer = QuantizerFactory.Create(outerQuantizer, rows: vocabularySize);
        using (torch.no_grad())
        {
            var generator = TrainingRandom.For(embedding.device);
            embedding.uniform_(-0.1, 0.1, generator: generator);
            decoderWeight.uniform_(-0.1, 0.1, generator: generator);
        }
        RegisterComponents();
    }

    public int VocabularySize { get; }

    public QuantizedRecurrentStack Recurrent => recurrent;

    /// <summary>The embedding table [vocab, embedding] (float shadow weights) and its quantizer.</summary>
    internal (Tensor Weight, Quantizer Quantizer) Embedding => (embedding, embeddingQuantizer);

    /// <summary>The decoder weight [vocab, hidden] (float shadow weights), its bias [vocab] and its quantizer.</summary>
    internal (Tensor Weight, Tensor Bias, Quantizer Quantizer) Decoder => (decoderWeight, decoderBias, decoderQuantizer);

    /// <summary>tokens [time, batch] int64 → logits [time, batch, vocab] and the final state.</summary>
    public (Tensor Logits, RecurrentState State) Forward(Tensor tokens, RecurrentState? state)
    {
        using var scope = torch.NewDisposeScope();
        var table = embeddingQuantizer.forward(embedding);
        var embedded = table.index_select(0, tokens.reshape(-1)).reshape(tokens.shape[0], tokens.shape[1], -1);
        var (hidden, next) = recurrent.Forward(training && embeddingDropout > 0 ? TrainingRandom.Dropout(embedded, embeddingDropout) : embedded, state);
        var logits = nn.functional.linear(hidden, decoderQuantizer.forward(decoderWeight), decoderBias);
        return (logits.MoveToOuterDisposeScope(), next.MoveToOuterDisposeScope());
    }

    /// <summary>Every weight matrix with its quantizer: the recurrent ones, then embedding and decoder.</summary>
    public IEnumerable<(string Name, Tensor Weight, Quantizer Quantizer)> WeightMatrices()
    {
        foreach (var w in recurrent.QuantizedWeights()) yield return w;
        yield return ("embedding", embedding, embeddingQuantizer);
        yield return ("decoder.weight", decoderWeight, decoderQuantizer);
    }

}
