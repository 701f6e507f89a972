using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized;

/// <summary>
/// Tensor helpers shared by the quantizers: scale groups, the exact-valued straight-through estimator and the
/// conversion of code/scale tensors into <see cref="QuantizedWeights"/>.
/// </summary>
internal static class QuantizerMath
{
    /// <summary>
    /// Number of scale groups of <paramref name="x"/>: its first dimension when per row (and at least 2-D); else
    /// <paramref name="gates"/>, the equal blocks of consecutive rows a recurrent matrix stacks its gates in (1 = the whole tensor).
    /// </summary>
    public static long GroupCount(Tensor x, bool perRow, long gates = 1)
    {
        if (perRow && x.dim() >= 2) return x.shape[0];
        if (gates == 1) return 1;
        if (x.dim() < 2 || x.shape[0] % gates != 0)
            throw new ArgumentException(
                $"Per-gate scales split the rows into {gates} equal gate blocks; a tensor of shape [{string.Join(", ", x.shape)}] has no such blocks.", nameof(x));
        return gates;
    }

    /// <summary><paramref name="x"/> viewed as [groups, values per group] (groups as <see cref="GroupCount"/>).</summary>
    public static Tensor Grouped(Tensor x, bool perRow, long gates = 1) => x.reshape(GroupCount(x, perRow, gates), -1);

    /// <summary>sign(x) with sign(0) = +1, in the dtype of <paramref name="x"/>.</summary>
    public static Tensor SignNonZero(Tensor x) => (x >= Scalars.Zero).to_type(x.dtype).mul(Scalars.Two).sub(Scalars.One);

    /// <summary><paramref name="x"/> times a step-size multiplier; <paramref name="x"/> itself when the multiplier is 1.</summary>
    public static Tensor TimesMultiplier(Tensor x, double multiplier)
    {
        if (multiplier == 1.0) return x;
        using var m = multiplier.ToScalar();
        return x.mul(m);
    }

    /// <summary>Replaces zeros, NaN and infinities of a positive scale tensor by 1 (an all-zero group then quantizes to 0).</summary>
    public static Tensor SafeScale(Tensor scale)
    {
        using var ok = (scale > Scalars.Zero).logical_and(scale.isfinite());
        return scale.where(ok, 1.0f);
    }

    /// <summary>
    /// The straight-through estimator in its exact-valued form: returns a tensor whose value is exactly
    /// <paramref name="quantized"/> (<c>q + (c - c.detach())</c> adds an exact zero) and whose gradient with
    /// respect to <paramref name="input"/> is that of the surrogate <c>c = surrogate(input)</c> (the identity
    /// when <paramref name="surrogate"/> is null, a clamp where the papers clip). Without autograd
    /// (no gradient required or <c>no_grad</c>) it returns <paramref name="quantized"/> itself.
    /// </summary>
    public static Tensor StraightThrough(Tensor quantized, Tensor input, Func<Tensor, Tensor>? surrogate = null)
    {
        if (!input.requires_grad || !torch.is_grad_enabled()) return quantized;
        var c = surrogate is null ? input : surrogate(input);
        return quantized.detach().add((c - c.detach()), Scalars.One);
    }

    /// <summary>Clips <paramref name="weight"/> to [-1, 1] in place (BinaryConnect's shadow-weight clip).</summary>
    public static void ClipToUnitRange(Tensor weight) => weight.clamp_(Scalars.MinusOne, Scalars.One);

    /// <summary>
    /// Checks that a tensor handed to <see cref="Quantizer.Encode"/> has rows and columns, and returns it detached,
    /// as float32, in its own shape. Activations (1-D) are never stored, so they get a clear error.
    /// </summary>
    public static Tensor CheckEncodable(Tensor weight, string registryName)
    {
        ArgumentNullException.ThrowIfNull(weight);
        if (weight.dim() < 2 || weight.numel() == 0)
            throw new ArgumentException(
                $"Quantizer '{registryName}' encodes 2-D weights [rows, columns]; got shape [{string.Join(", ", weight.shape)}]. " +
                "Activation tensors are quantized on the fly and never encoded.", nameof(weight));
        return weight.detach().to_type(ScalarType.Float32);
    }

    /// <summary>The weight as float32 values (<see cref="CodeLayout.Float"/>, 32 bits, no codes or scales).</summary>
    public static QuantizedWeights FloatWeights(Tensor weight)
    {
        using var cpu = weight.detach().cpu().to_type(ScalarType.Float32).contiguous();
        var rows = (int)cpu.shape[0];
        var columns = (int)(cpu.numel() / rows);
        return new QuantizedWeights(CodeLayout.Float, 32, rows, columns, false, Array.Empty<int>(), Array.Empty<float>(), cpu.data<float>().ToArray());
    }

    /// <summary>
    /// Builds <see cref="QuantizedWeights"/> from signed integer codes (any integral-valued tensor shaped like the
    /// weight) and scales [groups, scales per group]. Codes are stored as <paramref name="bits"/>-wide two's complement
    /// (or as 0/1 for <see cref="CodeLayout.Sign"/> and as bit planes for <see cref="CodeLayout.BinaryBases"/>).
    /// </summary>
    /// <remarks>
    /// Per-gate scales (<paramref name="gates"/> &gt; 1, not per row) are stored in the per-row layout, each row with its
    /// gate's scales, so every reader of packed weights takes them unchanged.
    /// </remarks>
    public static QuantizedWeights ToWeights(CodeLayout layout, int bits, Tensor weight, bool perRow, Tensor codes, Tensor scales, long gates = 1)
    {
        var rows = (int)weight.shape[0];
        if (!perRow && gates > 1)
        {
            scales = scales.reshape(gates, -1).repeat_interleave(rows / gates, 0);
            perRow = true;
        }
        var columns = (int)(weight.numel() / rows);
        using var codeCpu = codes.detach().to_type(ScalarType.Int32).cpu().contiguous();
        using var scaleCpu = scales.detach().to_type(ScalarType.Float32).cpu().contiguous();
        var codeArray = codeCpu.data<int>().ToArray();
        if (layout == CodeLayout.SignedInteger)
        {
            int mask = (1 << bits) - 1;
            for (int i = 0; i < codeArray.Length; i++) codeArray[i] &= mask;
        }
        var groups = perRow ? rows : 1;
        var scaleArray = scaleCpu.data<float>().ToArray();
        var expected = groups * (layout == CodeLayout.BinaryBases ? bits : 1);
        if (scaleArray.Length != expected)
            throw new InvalidOperationException($"Internal error: {scaleArray.Length} scales for {expected} expected.");
        return new QuantizedWeights(layout, bits, rows, columns, perRow, codeArray, scaleArray);
    }
}
