using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized;

/// <summary>
/// <see cref="QuantizerKind.TernaryWeightNet"/> (Li, Zhang and Liu 2016): threshold <c>delta = 0.7 * mean |w|</c>
/// (the paper's approximate least-squares solution); see <see cref="TernaryQuantizer"/> for the rest.
/// </summary>
internal sealed class TernaryWeightNetQuantizer : TernaryQuantizer
{
    /// <summary>The paper's threshold factor: delta = 0.7 * mean |w|.</summary>
    public static readonly Scalar ThresholdFactor = 0.7;

    /// <summary>Creates the quantizer.</summary>
    /// <param name="perRow">One threshold and alpha per row (output channel) instead of one per tensor.</param>
    /// <param name="stepSizeMultiplier">Multiplies alpha (1 = the paper's); the threshold is unchanged.</param>
    /// <param name="gates">One threshold and alpha per block of rows, the gates a recurrent matrix stacks (1 = per tensor or per row).</param>
    public TernaryWeightNetQuantizer(bool perRow = false, double stepSizeMultiplier = 1.0, int gates = 1)
        : base(nameof(TernaryWeightNetQuantizer), perRow, stepSizeMultiplier, gates) { }

    /// <inheritdoc />
    protected override QuantizerKind Kind => QuantizerKind.TernaryWeightNet;

    /// <inheritdoc />
    protected override Tensor Threshold(Tensor abs) => abs.mean(new long[] { 1 }, keepdim: true).mul(ThresholdFactor);
}
