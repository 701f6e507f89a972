namespace Microsoft.ML.Quantized;

/// <summary>The quantization methods of the four papers the library implements.</summary>
public enum QuantizerKind
{
    /// <summary>No quantization: float32 values.</summary>
    None = 0,
    /// <summary>BinaryConnect (Courbariaux et al. 2015): deterministic sign, float shadow weights, no scale.</summary>
    BinaryConnect,
    /// <summary>BinaryConnect's stochastic binarization: +1 with probability hard_sigmoid(w), else -1.</summary>
    StochasticBinary,
    /// <summary>Binary Weight Network (Rastegari et al. 2016): sign(w) times mean |w|.</summary>
    BinaryWeightNet,
    /// <summary>Ternary Weight Network (Li et al. 2016): threshold 0.7 * mean |w|, scale = mean of the kept |w|.</summary>
    TernaryWeightNet,
    /// <summary>
    /// HitNet's threshold ternary quantization (Wang et al. 2018) for weights: threshold theta * mean |w| (theta 0.7 by
    /// default, see <see cref="QuantizerOptions.TernaryThreshold"/>), scale = mean of the kept |w|.
    /// </summary>
    ThresholdTernary,
    /// <summary>Alternating multi-bit quantization (Xu et al. 2018): k binary bases with least-squares scales.</summary>
    AlternatingMultiBit,
    /// <summary>k-bit symmetric uniform quantization, deterministic or stochastic rounding (Li et al. 2017).</summary>
    Uniform,
    /// <summary>HitNet's Bernoulli ternary quantization, for activations in [-1, 1].</summary>
    BernoulliTernary,
    /// <summary>
    /// Zhu et al.'s Trained Ternary Quantization (2017) for weights: threshold t * max |w| (t 0.05 by default, see
    /// <see cref="QuantizerOptions.TernaryThreshold"/>), levels W_p, 0 and -W_n with two learned positive scales. Packed
    /// as float32 values.
    /// </summary>
    TrainedTernary,
}
