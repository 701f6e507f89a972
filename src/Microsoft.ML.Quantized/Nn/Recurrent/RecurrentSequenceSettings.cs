namespace Microsoft.ML.Quantized;

/// <summary>
/// What a sequence function (<see cref="LstmSequenceFunction"/>, <see cref="GruSequenceFunction"/>) needs besides tensors: the
/// HitNet slopes, the normalization of the recurrent term and the span forms of the activation quantizers.
/// </summary>
/// <param name="Slopes">Activation slopes of the cell.</param>
/// <param name="Normalization">The normalization of <c>W_h h</c> (per-group layer, batch or none) and the training flag.</param>
/// <param name="ActivationQuantizers">
/// One entry per quantizable activation of the cell, in its order (LSTM: i, f, g, o, h, c; GRU: r, z, n, h): the quantizer's
/// span form, null for the identity.
/// </param>
internal sealed record RecurrentSequenceSettings(
    ActivationSlopes Slopes, SequenceNormalization Normalization, IReadOnlyList<ISpanActivationQuantizer?> ActivationQuantizers)
{
    /// <summary>True when the recurrent term is normalized (and the function takes a gain).</summary>
    public bool Normalized => Normalization.Normalized;

    /// <summary>True when at least one of the activations <paramref name="first"/> .. <paramref name="first"/> + <paramref name="count"/> - 1 is quantized.</summary>
    public bool Quantizes(int first, int count = 1)
    {
        for (int k = first; k < first + count; k++) if (ActivationQuantizers[k] is not null) return true;
        return false;
    }
}
