namespace Microsoft.ML.Quantized;

/// <summary>
/// Distribution of one gate of one recurrent layer over evaluation data (KURE diagnostics): the pre-activation
/// (the summed input and recurrent products with biases and in-cell normalization, before the slope and the
/// sigmoid or tanh) and the post-activation (after the sigmoid or tanh, before any activation quantizer).
/// </summary>
/// <param name="Layer">Layer index, 0-based.</param>
/// <param name="Gate">
/// LSTM: <c>input</c>, <c>forget</c>, <c>candidate</c>, <c>output</c> and <c>cell</c> (the cell state entering the
/// output tanh); GRU: <c>reset</c>, <c>update</c>, <c>candidate</c>.
/// </param>
/// <param name="Count">Values seen (time steps x batch x hidden units).</param>
/// <param name="PreActivationMean">Mean of the pre-activation.</param>
/// <param name="PreActivationStdDev">Population standard deviation of the pre-activation.</param>
/// <param name="PreActivationKurtosis">Kurtosis of the pre-activation (3 = Gaussian, 1.8 = uniform).</param>
/// <param name="PostActivationKurtosis">Kurtosis of the post-activation.</param>
/// <param name="PostActivationHistogram">
/// The post-activation's distribution over its whole range, in 20 equal
/// bins: [0, 1] after a sigmoid (input, forget, output, reset, update), [-1, 1] after a tanh (candidate, cell). A gate
/// whose histogram piles up at both ends is bimodal (HitNet's aim for its slope-adjusted gates).
/// </param>
public sealed record GateStatistics(int Layer, string Gate, long Count, double PreActivationMean, double PreActivationStdDev,
    double PreActivationKurtosis, double PostActivationKurtosis, ValueHistogram PostActivationHistogram);
