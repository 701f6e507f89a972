using TorchSharp;

namespace Microsoft.ML.Quantized;

/// <summary>
/// Constant <see cref="Scalar"/>s that live as long as the process, for the tensor operations that take one.
/// </summary>
/// <remarks>
/// TorchSharp 0.107's Scalar-taking tensor methods (<c>mul(Scalar)</c>, <c>clamp</c>, the comparisons, ...) do not keep
/// their Scalar alive across the native call, and the one-argument <c>add</c> (so <c>a + b</c>) passes a temporary
/// alpha of 1 (<c>sub</c> has no alpha), and <c>square()</c> is <c>pow(2)</c> with a temporary 2. A concurrent garbage collection can then finalize an implicit temporary
/// (<c>x * 2.0</c>, <c>a + b</c>) mid-call: "Unknown scalar type", or silently wrong values. Tensor operations in this
/// library therefore pass only Scalars that outlive the call: these constants, or a <c>using var s = v.ToScalar();</c>
/// local for runtime values; additions pass <see cref="One"/> as alpha (<c>a.add(b, Scalars.One)</c>) and squares are
/// <c>x.pow(Scalars.Two)</c>.
/// Integer-valued constants are integer Scalars, like TorchSharp's own alpha: valid for every dtype, and on floating
/// tensors bitwise the same as the double literal.
/// </remarks>
internal static class Scalars
{
    /// <summary>0 (integer).</summary>
    public static readonly Scalar Zero = 0;

    /// <summary>1 (integer); also the alpha of a plain tensor addition.</summary>
    public static readonly Scalar One = 1;

    /// <summary>-1 (integer).</summary>
    public static readonly Scalar MinusOne = -1;

    /// <summary>2 (integer).</summary>
    public static readonly Scalar Two = 2;

    /// <summary>0.5 (double).</summary>
    public static readonly Scalar Half = 0.5;

    /// <summary>Negative infinity (float), the fill that drops a position from a maximum.</summary>
    public static readonly Scalar NegativeInfinity = float.NegativeInfinity;
}
