namespace Microsoft.ML.Quantized;

/// <summary>
/// Where <see cref="RecurrentNormalization.Layer"/> normalizes inside the cell (<see cref="QuantizedRecurrentOptions.LayerNormForm"/>).
/// Both forms normalize <c>W_x x</c> and <c>W_h h</c> separately and learn one gain and one bias per gate pre-activation
/// (G*H values each); they differ in the groups the mean and variance are taken over and in the LSTM cell state.
/// </summary>
public enum LayerNormForm
{
    /// <summary>
    /// Hou et al. 2019 ("Normalization helps training of quantized LSTM", NeurIPS; Section 3.2 and the authors' code,
    /// one <c>LayerNorm(H)</c> per gate and product): each gate's H pre-activations (i, f, g, o for the LSTM; r, z, n for
    /// the GRU) are normalized on their own, <c>LN_k(W_x x)_k + LN_k(W_h h)_k + b</c>; the cell state is not normalized,
    /// <c>h = o * tanh(c)</c>. The default for new models.
    /// </summary>
    PerGate = 0,

    /// <summary>
    /// One mean and variance over all G*H pre-activations of each product, <c>LN(W_x x) + LN(W_h h) + b</c>, and the LSTM's
    /// cell state normalized too, <c>h = o * tanh(LN(c))</c> (Ba et al. 2016, "Layer normalization", Section 3.1's LSTM
    /// form, which normalizes c_t). Every layer-normalized model saved before this option existed uses this form and
    /// loads with it.
    /// </summary>
    Joint = 1,
}
