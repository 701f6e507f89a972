namespace Microsoft.ML.Quantized;

/// <summary>
/// Which activations of a recurrent layer <see cref="QuantizedRecurrentOptions.ActivationQuantizer"/> quantizes
/// (<see cref="QuantizedRecurrentOptions.QuantizedActivations"/>; flags, combine with <c>|</c>). HitNet (Wang et al. 2018)
/// quantizes the gate outputs and the hidden state and keeps the LSTM cell state float.
/// </summary>
[Flags]
public enum RecurrentActivations
{
    /// <summary>No activation: not valid with an activation quantizer (use a <c>none</c> activation quantizer instead).</summary>
    None = 0,

    /// <summary>The gate outputs after their nonlinearity: i, f, g, o (LSTM) or r, z, n (GRU).</summary>
    Gates = 1,

    /// <summary>The emitted hidden state h, which the next step, the next layer and the head read.</summary>
    Hidden = 2,

    /// <summary>
    /// The LSTM cell state c after its update (<c>c' = Q(f * c + i * g)</c>), which the next step and the cell output read.
    /// LSTM only; a uniform quantizer with a step computed per step (the cell state is unbounded, so not BTQ).
    /// </summary>
    CellState = 4,
}
