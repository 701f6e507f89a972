using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized;

/// <summary>
/// <see cref="QuantizerKind.TrainedTernary"/>: Zhu et al.'s Trained Ternary Quantization (ICLR 2017). With the threshold
/// <c>delta = t * max|w|</c> (their Eq. 9; t = <see cref="QuantizerOptions.TernaryThreshold"/>, default 0.05):
/// <code>
/// q(w) = W_p  (w &gt; delta)      0  (|w| &lt;= delta)      -W_n  (w &lt; -delta)          (Eq. 6)
/// </code>
/// with two learned positive scales W_p and W_n per tensor (the paper's per layer) or per row, times the step-size
/// multiplier. Gradients (Eq. 7 and 8): <c>dL/dW_p = sum over {w &gt; delta} of dL/dq</c>, <c>dL/dW_n = -sum over
/// {w &lt; -delta} of dL/dq</c> (the chain rule of q = -W_n; Eq. 7 prints the sum without the sign), and the latent weight
/// receives <c>W_p dL/dq</c> above the threshold, <c>dL/dq</c> inside it and <c>W_n dL/dq</c> below it.
/// </summary>
/// <remarks>
/// The scales are parameters created with the quantizer (per row: when the row count is known) and set at the first
/// forward to the mean magnitude of the weights above <c>delta</c> and below <c>-delta</c> (the least-squares scales
/// for those masks): training here starts from scratch, where Zhu et al. fine-tune a pretrained model. A loaded
/// (nonzero) scale is kept. The packed format has no ternary layout with two scales, so <see cref="Encode"/> stores the
/// ternary values as float32 (<see cref="CodeLayout.Float"/>, 32 bits per weight).
/// </remarks>
internal sealed class TrainedTernaryQuantizer : Quantizer
{
    private const string PositiveName = "positive_scale", NegativeName = "negative_scale";
    private readonly bool _perRow;
    private readonly double _multiplier;
    private bool _hasScales;
    private bool _scalesReady;

    /// <summary>Creates the quantizer.</summary>
    /// <param name="perRow">Scales and threshold per row (output channel) instead of per tensor.</param>
    /// <param name="stepSizeMultiplier">Multiplies both scales (1 = unchanged).</param>
    /// <param name="theta">Threshold factor t of max |w|, in (0, 1); 0 = the default 0.05.</param>
    /// <param name="rows">Rows of the tensor to quantize, so per-row scales exist before an optimizer collects parameters; 0 = unknown.</param>
    public TrainedTernaryQuantizer(bool perRow = false, double stepSizeMultiplier = 1.0, double theta = 0, long rows = 0)
        : base(nameof(TrainedTernaryQuantizer))
    {
        var options = new QuantizerOptions { Kind = QuantizerKind.TrainedTernary, PerRowScale = perRow, StepSizeMultiplier = stepSizeMultiplier, TernaryThreshold = theta };
        QuantizerRegistry.ValidateCommon(options, nameof(theta));
        if (rows < 0) throw new ArgumentOutOfRangeException(nameof(rows), rows, "Row count must be 0 (unknown) or positive.");
        _perRow = perRow;
        _multiplier = stepSizeMultiplier;
        Theta = QuantizerRegistry.EffectiveTernaryThreshold(options);
        if (!perRow || rows > 0) CreateScales(perRow ? rows : 1, CPU);
    }

    /// <summary>The threshold factor t in use.</summary>
    public double Theta { get; }

    /// <inheritdoc />
    public override string RegistryName => QuantizerRegistry.NameOf(new QuantizerOptions
    {
        Kind = QuantizerKind.TrainedTernary, PerRowScale = _perRow, StepSizeMultiplier = _multiplier, TernaryThreshold = Theta,
    });

    /// <summary>Bits per stored weight: 32 (the ternary values are packed as float32).</summary>
    public override int Bits => 32;

    /// <summary>W_p [groups, 1]; null until created (per row with an unknown row count: at the first forward).</summary>
    public Parameter? PositiveScale => _hasScales ? get_parameter(PositiveName) : null;

    /// <summary>W_n [groups, 1] (positive; the negative level is -W_n); null until created.</summary>
    public Parameter? NegativeScale => _hasScales ? get_parameter(NegativeName) : null;

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var g = QuantizerMath.Grouped(input, _perRow);
        var (above, below, inside) = Masks(g.detach());
        var (positive, negative) = Scales(g.detach(), above, below);
        var q = positive * above - negative * below;
        if (input.requires_grad && is_grad_enabled())
        {
            // Eq. 8: the latent weight's gradient scaled by W_p above, 1 inside and W_n below the threshold (value + exact 0).
            var slope = (positive.detach() * above).add(inside, Scalars.One).add(negative.detach() * below, Scalars.One);
            var surrogate = slope * g;
            q = q.add(surrogate - surrogate.detach(), Scalars.One);
        }
        return q.reshape(input.shape).MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    public override QuantizedWeights Encode(Tensor weight)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var w = QuantizerMath.CheckEncodable(weight, RegistryName);
        var g = QuantizerMath.Grouped(w, _perRow);
        var (above, below, _) = Masks(g);
        var (positive, negative) = Scales(g, above, below);
        return QuantizerMath.FloatWeights((positive * above - negative * below).reshape(w.shape));
    }

    /// <summary>Masks [groups, n] of the weights above delta, below -delta and in between (float 0/1).</summary>
    private (Tensor Above, Tensor Below, Tensor Inside) Masks(Tensor g)
    {
        using var theta = Theta.ToScalar();
        var delta = g.abs().amax(new long[] { 1 }, keepdim: true).mul(theta);
        var above = (g > delta).to_type(g.dtype);
        var below = (g < delta.neg()).to_type(g.dtype);
        return (above, below, torch.ones_like(g).sub(above).sub(below));
    }

    /// <summary>W_p and W_n times the multiplier, created and initialized on first use.</summary>
    private (Tensor Positive, Tensor Negative) Scales(Tensor g, Tensor above, Tensor below)
    {
        if (!_hasScales) CreateScales(g.shape[0], g.device);
        var positive = PositiveScale!;
        var negative = NegativeScale!;
        if (positive.shape[0] != g.shape[0])
            throw new ArgumentException(
                $"Quantizer '{RegistryName}' learned {positive.shape[0]} scale pair(s) but got a tensor with {g.shape[0]} group(s); use one quantizer instance per tensor.", "input");
        if (!_scalesReady)
        {
            using (no_grad())
            {
                // Loaded scales are nonzero: keep them. Fresh ones are zero: the mean magnitudes of each side.
                if (positive.abs().max().item<float>() == 0f && negative.abs().max().item<float>() == 0f)
                {
                    var dims = new long[] { 1 };
                    positive.copy_((g * above).sum(dims, keepdim: true) / above.sum(dims, keepdim: true).clamp_min(Scalars.One));
                    negative.copy_((g * below).sum(dims, keepdim: true).neg() / below.sum(dims, keepdim: true).clamp_min(Scalars.One));
                }
            }
            _scalesReady = true;
        }
        return (QuantizerMath.TimesMultiplier(positive, _multiplier), QuantizerMath.TimesMultiplier(negative, _multiplier));
    }

    private void CreateScales(long groups, Device device)
    {
        // The parameters belong to the module, not to whatever dispose scope is open.
        foreach (var name in new[] { PositiveName, NegativeName })
        {
            var scale = new Parameter(zeros(groups, 1, ScalarType.Float32, device));
            scale.DetachFromDisposeScope();
            register_parameter(name, scale);
        }
        _hasScales = true;
    }
}
