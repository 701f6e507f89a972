namespace Microsoft.ML.Quantized;

/// <summary>
/// What a sequence function (<see cref="LstmSequenceFunction"/>, <see cref="GruSequenceFunction"/>) needs besides tensors: the
/// HitNet slopes and the normalization of the recurrent term (per-group layer normalization, recurrent batch normalization or
/// none), with the training flag of the forward pass (batch normalization's batch or running statistics), and the span forms
/// of the activation quantizers.
/// </summary>
/// <param name="Slopes">Activation slopes of the cell.</param>
/// <param name="LayerNorm">Layer normalization of <c>W_h h</c>, or null.</param>
/// <param name="BatchNorm">Batch normalization of <c>W_h h</c>, or null.</param>
/// <param name="Training">True for batch statistics (and running-statistics updates), false for running statistics.</param>
/// <param name="ActivationQuantizers">
/// One entry per quantizable activation of the cell, in its order (LSTM: i, f, g, o, h, c; GRU: r, z, n, h): the quantizer's
/// span form, null for the identity.
/// </param>
internal sealed record RecurrentSequenceSettings(
    ActivationSlopes Slopes, RecurrentLayerNorm? LayerNorm, RecurrentBatchNorm? BatchNorm, bool Training, IReadOnlyList<ISpanActivationQuantizer?> ActivationQuantizers)
{
    /// <summary>True when the recurrent term is normalized (and the function takes a gain).</summary>
    public bool Normalized => LayerNorm is not null || BatchNorm is not null;

    /// <summary>True when the forward pass takes batch statistics, whose running averages it then updates.</summary>
    public bool TracksBatchStatistics => BatchNorm is not null && Training;

    /// <summary>True when at least one of the activations <paramref name="first"/> .. <paramref name="first"/> + <paramref name="count"/> - 1 is quantized.</summary>
    public bool Quantizes(int first, int count = 1)
    {
        for (int k = first; k < first + count; k++) if (ActivationQuantizers[k] is not null) return true;
        return false;
    }
}
