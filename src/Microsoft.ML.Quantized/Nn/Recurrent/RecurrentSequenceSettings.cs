namespace Microsoft.ML.Quantized;

/// <summary>
/// What a sequence function (<see cref="LstmSequenceFunction"/>, <see cref="GruSequenceFunction"/>) needs besides tensors: the
/// HitNet slopes and the normalization of the recurrent term (per-group layer normalization, recurrent batch normalization or
/// none), with the training flag of the forward pass (batch normalization's batch or running statistics).
/// </summary>
/// <param name="Slopes">Activation slopes of the cell.</param>
/// <param name="LayerNorm">Layer normalization of <c>W_h h</c>, or null.</param>
/// <param name="BatchNorm">Batch normalization of <c>W_h h</c>, or null.</param>
/// <param name="Training">True for batch statistics (and running-statistics updates), false for running statistics.</param>
internal sealed record RecurrentSequenceSettings(ActivationSlopes Slopes, RecurrentLayerNorm? LayerNorm, RecurrentBatchNorm? BatchNorm, bool Training)
{
    /// <summary>True when the recurrent term is normalized (and the function takes a gain).</summary>
    public bool Normalized => LayerNorm is not null || BatchNorm is not null;

    /// <summary>True when the forward pass takes batch statistics, whose running averages it then updates.</summary>
    public bool TracksBatchStatistics => BatchNorm is not null && Training;
}
