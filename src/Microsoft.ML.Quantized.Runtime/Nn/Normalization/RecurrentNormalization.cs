namespace Microsoft.ML.Quantized;

/// <summary>
/// Normalization inside the recurrent cell (Hou et al., "Normalization helps training of quantized LSTM",
/// NeurIPS 2019). Each one makes the cell insensitive to the scale of the quantized weights, which is what
/// lets binary and ternary weights train.
/// </summary>
public enum RecurrentNormalization
{
    /// <summary>No normalization.</summary>
    None = 0,
    /// <summary>Weight normalization: each row of the quantized W_x and W_h rescaled to a learned norm g.</summary>
    Weight,
    /// <summary>
    /// Layer normalization of W_x x and of W_h h: per gate, cell state not normalized (Hou et al. 2019, the default), or
    /// jointly over all gates with the LSTM cell state normalized too; see <see cref="QuantizedRecurrentOptions.LayerNormForm"/>.
    /// </summary>
    Layer,
    /// <summary>Batch normalization of W_x x and W_h h, statistics shared across time steps.</summary>
    BatchShared,
    /// <summary>Batch normalization of W_x x and W_h h, separate statistics for each time step.</summary>
    BatchPerStep,
}
