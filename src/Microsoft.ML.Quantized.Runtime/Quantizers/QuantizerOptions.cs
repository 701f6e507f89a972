using System.Text.Json.Serialization;

namespace Microsoft.ML.Quantized;

/// <summary>
/// Which quantizer to apply to a tensor (weights or activations) and how.
/// Created by name through <c>QuantizerRegistry</c>, so sweeps and model files name quantizers the same way.
/// </summary>
public sealed class QuantizerOptions : IJsonOnDeserializing, IJsonOnDeserialized
{
    // True while a saved header is read and has not (yet) named TernaryThresholdFromMaximum: see OnDeserializing.
    private bool _legacyThresholdRule;
    private bool _ternaryThresholdFromMaximum;
    private bool? _perRowScale;

    /// <summary>The method. Default <see cref="QuantizerKind.None"/> (float).</summary>
    public QuantizerKind Kind { get; set; } = QuantizerKind.None;

    /// <summary>
    /// Bits per value. 0 (the default) takes the method's own width: 1 for the binary methods, 2 for the
    /// ternary ones (three levels stored in two bits), 2 for <see cref="QuantizerKind.AlternatingMultiBit"/>
    /// and 4 for <see cref="QuantizerKind.Uniform"/>. Alternating accepts 1-4, uniform 2-8.
    /// </summary>
    public int Bits { get; set; }

    /// <summary>
    /// One scale per output row (output channel) instead of one per tensor. Default: true for
    /// <see cref="QuantizerKind.AlternatingMultiBit"/> (Xu et al. 2018 quantize the weight matrix row by row, each row with its own coefficients, Figure 3),
    /// false for the others (per tensor, as in their papers); setting it overrides the default. Ignored by
    /// <see cref="QuantizerKind.BinaryConnect"/>, which has no scale. Every saved model names it, so an alternating model
    /// saved before the per-row default keeps its per-tensor coefficients.
    /// </summary>
    public bool PerRowScale
    {
        get => _perRowScale ?? QuantizerRegistry.DefaultPerRowScale(Kind);
        set => _perRowScale = value;
    }

    /// <summary>
    /// <see cref="QuantizerKind.BinaryWeightNet"/>, <see cref="QuantizerKind.TernaryWeightNet"/> and
    /// <see cref="QuantizerKind.ThresholdTernary"/> only: one scale (and, for the ternary methods, one threshold) per gate of a
    /// recurrent weight matrix, that is per block of H rows of W_ih and W_hh (4 blocks i, f, g, o for the LSTM, 3 r, z, n for
    /// the GRU), as Hou et al. 2019's code quantizes each gate's matrix on its own ("Normalization helps training of quantized
    /// LSTM", their <c>quantize</c> step). Tensors that are not stacked gates (embedding, decoder, classifier head) get one
    /// scale, as without it. The packed model stores the gate's scale on each of its rows (the per-row layout), so per-gate
    /// models read with every engine and exporter; that costs 4 bytes per row, as per-row scales do. Not with
    /// <see cref="PerRowScale"/>. Default false (one scale per tensor, as Rastegari et al. and Li et al. define BWN and TWN).
    /// Registry flag <c>-gate</c> (<c>twn-gate</c>).
    /// </summary>
    public bool PerGateScale { get; set; }

    /// <summary>
    /// Uniform only: round stochastically during training (unbiased: E[q(w)] = w, Li et al. 2017's SR).
    /// Evaluation always rounds to nearest. Default false.
    /// </summary>
    public bool StochasticRounding { get; set; }

    /// <summary>
    /// Uniform weights only: all 2^k levels of a k-bit two's complement code, <c>-2^(k-1) .. 2^(k-1) - 1</c>, with the step
    /// <c>max |w| / 2^(k-1)</c>, so the grid is the fixed-point range [-max |w|, max |w|) (4 levels at 2 bits: -1, -1/2, 0,
    /// 1/2 times max |w|), as the k-bit uniform quantization HitNet (Wang et al. 2018) compares with.
    /// Default false: the symmetric levels <c>-(2^(k-1) - 1) .. 2^(k-1) - 1</c> (3 at 2 bits), which every model saved
    /// before this option keeps. Registry flag <c>-asym</c>, e.g. <c>uniform2-asym</c>. Not with
    /// <see cref="MinimumErrorStep"/>, and not for activations (the packed model's activation form is symmetric).
    /// </summary>
    public bool AsymmetricLevels { get; set; }

    /// <summary>
    /// <see cref="QuantizerKind.StochasticBinary"/> only: evaluate (and pack) with the real-valued shadow weights, which
    /// training keeps in [-1, 1], as BinaryConnect evaluates its stochastic variant (Courbariaux et al. 2015, Section 2.6,
    /// "Test-Time Inference": the binary weights for deterministic BinaryConnect, the real-valued ones for stochastic).
    /// The packed model then holds those weights as float32 (32 bits per weight, no compression). Default false: evaluate
    /// with sign(w) and pack one bit per weight, the deployable binary network (and how every <c>sbc</c> model saved
    /// before this option evaluates). Registry flag <c>-real</c> (<c>sbc-real</c>).
    /// </summary>
    public bool RealValuedEvaluation { get; set; }

    /// <summary>Restrict the scale (step size) to a power of two, so dequantization is a shift. Default false.</summary>
    public bool PowerOfTwoScale { get; set; }

    /// <summary>
    /// Uniform only: learn the step size by gradient descent (LSQ-style), initialized from max |w|. Default false
    /// (step size = max |w| / (2^(bits-1) - 1)).
    /// </summary>
    public bool LearnedScale { get; set; }

    /// <summary>
    /// Uniform only: choose each group's step to minimize the squared quantization error <c>sum (q(x) - x)^2</c>
    /// instead of taking <c>max |x| / Qp</c>, so a few outliers are clipped rather than setting the step for every
    /// other value. The step is searched as a fraction of <c>max |x| / Qp</c> (32 fractions k/32, then 32 finer ones
    /// around the best, a resolution of 1/512). With <see cref="PowerOfTwoScale"/> the power of two next below or above
    /// it with the smaller error is taken; with <see cref="LearnedScale"/> it is the learned step's start. The search
    /// runs at every forward of a fixed step (about 64 passes over the tensor), so quantization-aware training with it is
    /// slower than with the max step. Default false.
    /// </summary>
    public bool MinimumErrorStep { get; set; }

    /// <summary>
    /// Uniform weights only: compute the step once, from the weights at the first forward (max |w| / Qp, or the
    /// minimum-error or power-of-two step, times <see cref="StepSizeMultiplier"/>), save it with the model and never
    /// re-derive it: a fixed grid, as Li et al. 2017 ("Training quantized nets: a deeper understanding", Section 3) train
    /// without float shadow weights. Training with <c>TrainingOptions.KeepFloatShadowWeights = false</c> requires it for
    /// uniform weights (otherwise the step would follow max |w| after every update, a moving grid). Not with
    /// <see cref="LearnedScale"/>. Default false. Registry flag <c>-fixed</c>, e.g. <c>uniform4-sr-fixed</c>.
    /// </summary>
    public bool FixedStep { get; set; }

    /// <summary>
    /// Multiplies the step size the quantizer would use (1.0 = unchanged). Used to measure robustness to a
    /// step size that is off by a few percent (KURE). Default 1.
    /// </summary>
    public double StepSizeMultiplier { get; set; } = 1.0;

    /// <summary>
    /// <see cref="QuantizerKind.ThresholdTernary"/> and <see cref="QuantizerKind.TrainedTernary"/> only: the factor theta of the threshold <c>delta = theta * E|w|</c>
    /// (HitNet, Wang et al. 2018), or <c>delta = theta * max|w|</c> with <see cref="TernaryThresholdFromMaximum"/>.
    /// 0 (the default) takes the rule's default: 0.7 for the mean form, 0.05 for the maximum form. Otherwise finite and
    /// &gt; 0 (below 1 for the maximum form). Registry flag <c>-theta&lt;value&gt;</c>, e.g. <c>ttq-theta0.5</c>. Also
    /// <see cref="QuantizerKind.TrainedTernary"/>'s factor t of <c>delta = t * max|w|</c> (0 = Zhu et al.'s 0.05), e.g. <c>zttq-theta0.1</c>.
    /// </summary>
    public double TernaryThreshold { get; set; }

    /// <summary>
    /// <see cref="QuantizerKind.ThresholdTernary"/> only: take the threshold from the largest magnitude,
    /// <c>delta = theta * max|w|</c> (theta default 0.05, the threshold form of Zhu et al. 2017, "Trained Ternary
    /// Quantization", with the mean-magnitude scale instead of its trained scales) instead of HitNet's
    /// <c>theta * E|w|</c>. Default false. Registry flag <c>-max</c> (<c>ttq-max</c>). This is the rule that every
    /// <c>ttq</c> model saved before the option existed was trained with: such a file, whose options do not name it,
    /// loads with it set, so the model re-quantizes as it was trained.
    /// </summary>
    public bool TernaryThresholdFromMaximum
    {
        get => _ternaryThresholdFromMaximum;
        set
        {
            _ternaryThresholdFromMaximum = value;
            _legacyThresholdRule = false;
        }
    }

    /// <summary>Copies these options.</summary>
    public QuantizerOptions Clone() => (QuantizerOptions)MemberwiseClone();

    /// <summary>The registry name of this configuration, e.g. <c>twn</c>, <c>uniform4-sr</c>, <c>alt3-row</c>.</summary>
    public override string ToString() => QuantizerRegistry.NameOf(this);

    /// <summary>
    /// Before a saved header fills these options: a header written before <see cref="TernaryThresholdFromMaximum"/> existed
    /// does not name it, and its <c>ttq</c> used the maximum form; a newer header names it and overrides this.
    /// </summary>
    void IJsonOnDeserializing.OnDeserializing()
    {
        _ternaryThresholdFromMaximum = true;
        _legacyThresholdRule = true;
    }

    /// <summary>The legacy rule applies only to <see cref="QuantizerKind.ThresholdTernary"/>; other kinds never had a threshold.</summary>
    void IJsonOnDeserialized.OnDeserialized()
    {
        if (_legacyThresholdRule && Kind != QuantizerKind.ThresholdTernary) _ternaryThresholdFromMaximum = false;
        _legacyThresholdRule = false;
    }
}
