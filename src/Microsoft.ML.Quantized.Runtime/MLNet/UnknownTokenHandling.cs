namespace Microsoft.ML.Quantized;

/// <summary>
/// What the quantized language-model transforms and sequence-classifier trainers do with a token key they have no
/// embedding for: key 0 (missing; <c>MapValueToKey</c> gives it to words it was not fitted on), a key never seen in
/// training, or (with <see cref="MapToUnknown"/>) a key seen fewer than the options' <c>MinimumTokenCount</c> times.
/// </summary>
public enum UnknownTokenHandling
{
    /// <summary>
    /// Default. Such keys map to one learned <c>&lt;unk&gt;</c> token. Training keys seen fewer than
    /// <c>MinimumTokenCount</c> times (default 2) are trained as <c>&lt;unk&gt;</c>, so its embedding learns what rare
    /// words look like and scoring text with new words works. A row with no tokens at all scores as a defined output
    /// (see <see cref="Skip"/>).
    /// </summary>
    MapToUnknown,

    /// <summary>
    /// Such keys are dropped, in training and in scoring. A row left with no tokens scores as a defined output: the
    /// language model gives the state after the row separator and a perplexity of NaN; a classifier gives the class
    /// frequencies of its training labels.
    /// </summary>
    Skip,

    /// <summary>
    /// Such a key, or a row with no tokens, is an error naming the column, the row and the position, in training and
    /// in scoring. For pipelines whose key mapping is fitted on the data the model scores.
    /// </summary>
    Strict,
}
