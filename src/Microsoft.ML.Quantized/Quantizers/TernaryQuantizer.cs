using static TorchSharp.torch;

namespace Microsoft.ML.Quantized;

/// <summary>
/// Threshold ternarization shared by TWN and HitNet's TTQ (Li et al. 2016; Wang et al. 2018): <c>q(w) = alpha * sign(w) * 1{|w| &gt; delta}</c>, with
/// <c>alpha</c> the mean of the kept |w| (the least-squares scale for the chosen support) times the step-size
/// multiplier, per tensor, per row or per gate block of rows (Hou et al. 2019). Subclasses choose the threshold <c>delta</c>. Identity straight-through
/// gradient (neither paper clips). Stored as <see cref="CodeLayout.SignedInteger"/> with 2 bits (codes -1, 0, +1)
/// and one scale per group.
/// </summary>
internal abstract class TernaryQuantizer : Quantizer
{
    protected TernaryQuantizer(string name, bool perRow, double stepSizeMultiplier, int gates) : base(name)
    {
        PerRow = perRow;
        Multiplier = stepSizeMultiplier;
        Gates = gates;
    }

    /// <summary>One threshold and alpha per row.</summary>
    protected bool PerRow { get; }

    /// <summary>Gate blocks with one threshold and alpha each (1 = per tensor or per row).</summary>
    protected int Gates { get; }

    /// <summary>The step-size multiplier applied to alpha.</summary>
    protected double Multiplier { get; }

    /// <summary>The method, for the registry name.</summary>
    protected abstract QuantizerKind Kind { get; }

    /// <summary>The options this quantizer implements (its registry name is theirs).</summary>
    protected virtual QuantizerOptions Describe() => new() { Kind = Kind, PerRowScale = PerRow, PerGateScale = Gates > 1, StepSizeMultiplier = Multiplier };

    /// <inheritdoc />
    public override string RegistryName => QuantizerRegistry.NameOf(Describe());

    /// <inheritdoc />
    public override int Bits => 2;

    /// <summary>Thresholds [groups, 1] for grouped absolute weights <paramref name="abs"/> [groups, n].</summary>
    protected abstract Tensor Threshold(Tensor abs);

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var (codes, alpha) = Quantize(input.detach());
        var q = (codes * alpha).reshape(input.shape);
        return QuantizerMath.StraightThrough(q, input).MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    public override QuantizedWeights Encode(Tensor weight)
    {
        using var scope = NewDisposeScope();
        var w = QuantizerMath.CheckEncodable(weight, RegistryName);
        var (codes, alpha) = Quantize(w);
        return QuantizerMath.ToWeights(CodeLayout.SignedInteger, 2, w, PerRow, codes, alpha, Gates);
    }

    private (Tensor Codes, Tensor Alpha) Quantize(Tensor w)
    {
        var g = QuantizerMath.Grouped(w, PerRow, Gates);
        var abs = g.abs();
        var kept = (abs > Threshold(abs)).to_type(g.dtype);
        var count = kept.sum(new long[] { 1 }, keepdim: true).clamp_min(Scalars.One);
        var alpha = (abs * kept).sum(new long[] { 1 }, keepdim: true) / count;
        alpha = QuantizerMath.TimesMultiplier(alpha, Multiplier);
        return (g.sign() * kept, alpha);
    }
}
