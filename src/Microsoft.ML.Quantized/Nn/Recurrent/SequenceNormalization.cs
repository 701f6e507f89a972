namespace Microsoft.ML.Quantized;

/// <summary>
/// Which normalization a sequence function applies to a term of every step (the recurrent term <c>W_h h</c> in
/// <see cref="LstmSequenceFunction"/> and <see cref="GruSequenceFunction"/>, the input term <c>W_x x</c> in
/// <see cref="InputTermsFunction"/>): per-group layer normalization, recurrent batch normalization or none, with the
/// training flag of the forward pass.
/// </summary>
/// <param name="LayerNorm">Layer normalization of the term, or null.</param>
/// <param name="BatchNorm">Batch normalization of the term, or null.</param>
/// <param name="Training">True for batch statistics (and running-statistics updates), false for running statistics.</param>
internal sealed record SequenceNormalization(RecurrentLayerNorm? LayerNorm, RecurrentBatchNorm? BatchNorm, bool Training)
{
    /// <summary>True when the term is normalized (and the function takes a gain).</summary>
    public bool Normalized => LayerNorm is not null || BatchNorm is not null;

    /// <summary>True when the forward pass takes batch statistics, whose running averages it then updates.</summary>
    public bool TracksBatchStatistics => BatchNorm is not null && Training;
}
