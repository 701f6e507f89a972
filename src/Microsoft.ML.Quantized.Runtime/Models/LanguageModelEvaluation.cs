namespace Microsoft.ML.Quantized;

/// <summary>How well a language model predicts a token sequence.</summary>
/// <param name="CrossEntropy">Mean negative log-likelihood, nats per token.</param>
/// <param name="TokenCount">Tokens predicted.</param>
public sealed record LanguageModelEvaluation(double CrossEntropy, long TokenCount)
{
    /// <summary>exp(cross-entropy): the word-level metric.</summary>
    public double Perplexity => Math.Exp(CrossEntropy);

    /// <summary>Cross-entropy in bits per token: bits per character (BPC) for character models.</summary>
    public double BitsPerToken => CrossEntropy / Math.Log(2);
}
