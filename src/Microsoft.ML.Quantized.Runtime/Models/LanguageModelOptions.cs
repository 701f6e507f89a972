namespace Microsoft.ML.Quantized;

/// <summary>
/// A recurrent language model: embedding, quantized recurrent stack, decoder. Embedding and decoder stay
/// float by default (as in Hou et al. 2019 and HitNet); they dominate a word model's size, so
/// <see cref="QuantizeEmbeddingAndDecoder"/> quantizes them with the weight quantizer too.
/// </summary>
public sealed class LanguageModelOptions
{
    /// <summary>The recurrent stack (cell, sizes, quantizers, slopes, normalization).</summary>
    public QuantizedRecurrentOptions Recurrent { get; set; } = new();

    /// <summary>Embedding width; 0 (default) uses <see cref="QuantizedRecurrentOptions.HiddenSize"/>.</summary>
    public int EmbeddingSize { get; set; }

    /// <summary>Dropout on the embedding output, in [0, 1). Default 0.</summary>
    public double EmbeddingDropout { get; set; }

    /// <summary>Quantize the embedding and decoder weights with the recurrent weight quantizer. Default false.</summary>
    public bool QuantizeEmbeddingAndDecoder { get; set; }

    /// <summary>Deep copy.</summary>
    public LanguageModelOptions Clone()
    {
        var copy = (LanguageModelOptions)MemberwiseClone();
        copy.Recurrent = Recurrent.Clone();
        return copy;
    }
}
