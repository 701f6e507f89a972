namespace Microsoft.ML.Quantized;

/// <summary>
/// An activation quantizer (gate outputs, hidden state) in its evaluation form, applied in place to one vector.
/// <list type="bullet">
/// <item><see cref="ActivationQuantization.BernoulliTernary"/>: the deterministic <c>sign(x) * 1{|x| &gt; 0.5}</c>
/// (<c>BernoulliTernaryQuantizer</c> draws at random only in training).</item>
/// <item><see cref="ActivationQuantization.Uniform"/> with a learned step: <c>s</c> is fixed (the learned step, clamped to
/// at least 1e-12, times the step-size multiplier).</item>
/// <item><see cref="ActivationQuantization.Uniform"/> without one: the step is computed from each vector, as
/// <c>UniformQuantizer</c> computes it from each activation tensor: <c>s = max |x| / Qp</c> (1 when that is 0 or
/// not finite), times the multiplier, then, with a power-of-two step, rounded up to one. The engine scores one sequence at
/// a time, so "each tensor" is this sequence's vector (libtorch, given a batch, takes the maximum over the batch).</item>
/// </list>
/// Stochastic rounding is a training-time behaviour: evaluation, and so the engine, rounds to nearest even. Immutable.
/// </summary>
/// <remarks>Fields: byte kind (<see cref="ActivationQuantization"/>); for Uniform: byte bits (2..8), byte flags (bit 0 =
/// power-of-two step), float32 fixed step (0 = computed per vector), float32 multiplier.</remarks>
internal sealed class PackedActivationQuantizer
{
    private const byte PowerOfTwoFlag = 1;

    private PackedActivationQuantizer(ActivationQuantization method, int bits, float fixedStep, float multiplier, bool powerOfTwoStep)
    {
        Method = method;
        Bits = bits;
        FixedStep = fixedStep;
        Multiplier = multiplier;
        PowerOfTwoStep = powerOfTwoStep;
        MaxLevel = method == ActivationQuantization.Uniform ? (1 << (bits - 1)) - 1 : 0;
    }

    /// <summary>No quantization.</summary>
    public static PackedActivationQuantizer None { get; } = new(ActivationQuantization.None, 32, 0f, 1f, false);

    /// <summary>The Bernoulli ternary quantizer's evaluation rule.</summary>
    public static PackedActivationQuantizer BernoulliTernary { get; } = new(ActivationQuantization.BernoulliTernary, 2, 0f, 1f, false);

    /// <summary>A k-bit uniform quantizer.</summary>
    /// <param name="bits">2..8.</param>
    /// <param name="fixedStep">The final step (a learned step, clamped and multiplied), or 0 to compute it from each vector.</param>
    /// <param name="multiplier">Multiplies a computed step (unused with a fixed step).</param>
    /// <param name="powerOfTwoStep">Round a computed step up to a power of two.</param>
    public static PackedActivationQuantizer Uniform(int bits, float fixedStep, float multiplier, bool powerOfTwoStep)
    {
        if (bits is < 2 or > 8) throw new ArgumentOutOfRangeException(nameof(bits), bits, "Uniform activation quantization takes 2..8 bits.");
        if (!(fixedStep >= 0 && float.IsFinite(fixedStep))) throw new ArgumentOutOfRangeException(nameof(fixedStep), fixedStep, "The fixed step must be finite and >= 0 (0 = computed).");
        if (!(multiplier > 0 && float.IsFinite(multiplier))) throw new ArgumentOutOfRangeException(nameof(multiplier), multiplier, "The multiplier must be finite and > 0.");
        return new(ActivationQuantization.Uniform, bits, fixedStep, multiplier, powerOfTwoStep);
    }

    /// <summary>The method.</summary>
    public ActivationQuantization Method { get; }

    /// <summary>Bits per value (32 for None, 2 for the ternary rule).</summary>
    public int Bits { get; }

    /// <summary>Uniform: the fixed step, or 0 when it is computed from each vector.</summary>
    public float FixedStep { get; }

    /// <summary>Uniform with a computed step: multiplies it.</summary>
    public float Multiplier { get; }

    /// <summary>Uniform with a computed step: round it up to a power of two.</summary>
    public bool PowerOfTwoStep { get; }

    /// <summary>Uniform: the largest level Qp = 2^(bits-1) - 1.</summary>
    public int MaxLevel { get; }

    /// <summary>True when <see cref="Apply"/> leaves values unchanged.</summary>
    public bool IsIdentity => Method == ActivationQuantization.None;

    /// <summary>Quantizes <paramref name="values"/> in place.</summary>
    public void Apply(Span<float> values)
    {
        switch (Method)
        {
            case ActivationQuantization.BernoulliTernary:
                for (int i = 0; i < values.Length; i++) values[i] = MathF.Abs(values[i]) > 0.5f ? MathF.Sign(values[i]) : 0f;
                break;
            case ActivationQuantization.Uniform:
                float step = FixedStep > 0 ? FixedStep : ComputedStep(values);
                for (int i = 0; i < values.Length; i++)
                    values[i] = MathF.Round(Math.Clamp(values[i] / step, -MaxLevel, MaxLevel), MidpointRounding.ToEven) * step;
                break;
        }
    }

    /// <summary>max |x| / Qp (1 when not positive and finite), times the multiplier, then the power-of-two rounding.</summary>
    private float ComputedStep(ReadOnlySpan<float> values)
    {
        float max = 0f;
        foreach (float v in values) max = MathF.Max(max, MathF.Abs(v));
        float step = max / MaxLevel;
        if (!(step > 0 && float.IsFinite(step))) step = 1f;
        if (Multiplier != 1f) step *= Multiplier;
        return PowerOfTwoStep ? PowerOfTwoAtLeast(step) : step;
    }

    /// <summary>The smallest power of two &gt;= <paramref name="step"/> (as <c>UniformQuantizer.PowerOfTwoAtLeast</c>).</summary>
    internal static float PowerOfTwoAtLeast(float step)
    {
        float p = MathF.ScaleB(1f, (int)MathF.Ceiling(MathF.Log2(step)));
        return p >= step ? p : 2f * p;
    }

    internal void Write(PackedModelWriter writer)
    {
        writer.WriteByte((byte)Method);
        if (Method != ActivationQuantization.Uniform) return;
        writer.WriteByte((byte)Bits);
        writer.WriteByte(PowerOfTwoStep ? PowerOfTwoFlag : (byte)0);
        writer.WriteSingle(FixedStep);
        writer.WriteSingle(Multiplier);
    }

    internal static PackedActivationQuantizer Read(PackedModelReader reader, string field)
    {
        byte method = reader.ReadByte($"{field} kind");
        switch ((ActivationQuantization)method)
        {
            case ActivationQuantization.None: return None;
            case ActivationQuantization.BernoulliTernary: return BernoulliTernary;
            case ActivationQuantization.Uniform:
                int bits = reader.ReadByte($"{field} bits");
                byte flags = reader.ReadByte($"{field} flags");
                if ((flags & ~PowerOfTwoFlag) != 0) throw reader.Damaged($"{field} has unknown flags 0x{flags:X2}");
                float step = reader.ReadSingle($"{field} step");
                float multiplier = reader.ReadSingle($"{field} multiplier");
                return Uniform(bits, step, multiplier, (flags & PowerOfTwoFlag) != 0);
            default:
                throw reader.Damaged($"{field} has unknown activation quantization {method}");
        }
    }
}
