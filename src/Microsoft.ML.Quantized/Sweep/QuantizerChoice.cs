using System.Text.Json;
using System.Text.Json.Serialization;

namespace Microsoft.ML.Quantized.Sweep;

/// <summary>
/// One quantizer a sweep can pick: the method, its bit width and (uniform only) a power-of-two and/or least-error step. Only valid
/// method/bit-width pairs can be created (1-bit: BinaryConnect, StochasticBinary, BinaryWeightNet; 2-bit codes:
/// TernaryWeightNet, ThresholdTernary, BernoulliTernary; AlternatingMultiBit 1-4; Uniform 2-8), so a search space
/// built from these never proposes an impossible model. Written and parsed as the <c>QuantizerRegistry</c> name
/// (<c>bc</c>, <c>twn</c>, <c>alt3</c>, <c>uniform4-pow2</c>, <c>uniform3-mse</c>, ...).
/// </summary>
[JsonConverter(typeof(QuantizerChoiceJsonConverter))]
public sealed record QuantizerChoice
{
    /// <summary>
    /// Creates a choice; <paramref name="bits"/> 0 takes the method's own width. Throws
    /// <see cref="ArgumentException"/> for a pair that does not exist (e.g. BinaryConnect with 2 bits).
    /// </summary>
    public QuantizerChoice(QuantizerKind kind, int bits = 0, bool powerOfTwoScale = false, bool minimumErrorStep = false)
    {
        var options = new QuantizerOptions { Kind = kind, Bits = bits, PowerOfTwoScale = powerOfTwoScale, MinimumErrorStep = minimumErrorStep };
        try
        {
            // The registry's own checks, so choices and model files agree on validity (BernoulliTernary is activation-only).
            if (kind == QuantizerKind.BernoulliTernary) QuantizerRegistry.ValidateActivation(options, "QuantizerChoice");
            else QuantizerRegistry.Validate(options, "QuantizerChoice");
        }
        catch (ArgumentException e)
        {
            throw new ArgumentException(
                $"QuantizerChoice({kind}, bits: {bits}, powerOfTwoScale: {powerOfTwoScale}, minimumErrorStep: {minimumErrorStep}) is not a valid quantizer: {e.Message}", nameof(bits), e);
        }
        Kind = kind;
        Bits = QuantizerRegistry.EffectiveBits(options);
        PowerOfTwoScale = powerOfTwoScale;
        MinimumErrorStep = minimumErrorStep;
    }

    /// <summary>The method.</summary>
    public QuantizerKind Kind { get; }

    /// <summary>Bits stored per value (the method's own width resolved; 32 for <see cref="QuantizerKind.None"/>).</summary>
    public int Bits { get; }

    /// <summary>Uniform only: the step size is a power of two.</summary>
    public bool PowerOfTwoScale { get; }

    /// <summary>Uniform only: the step with the least squared error (<see cref="QuantizerOptions.MinimumErrorStep"/>).</summary>
    public bool MinimumErrorStep { get; }

    /// <summary>The registry name, e.g. <c>twn</c>, <c>alt3</c>, <c>uniform4-pow2</c>.</summary>
    public string Name => QuantizerRegistry.NameOf(ToOptions());

    /// <summary>No quantization (float32), for a float baseline in a sweep.</summary>
    public static QuantizerChoice Float { get; } = new(QuantizerKind.None);

    /// <summary>BinaryConnect, 1 bit.</summary>
    public static QuantizerChoice BinaryConnect { get; } = new(QuantizerKind.BinaryConnect);

    /// <summary>Stochastic BinaryConnect, 1 bit.</summary>
    public static QuantizerChoice StochasticBinary { get; } = new(QuantizerKind.StochasticBinary);

    /// <summary>Binary Weight Network, 1 bit with a scale.</summary>
    public static QuantizerChoice BinaryWeightNet { get; } = new(QuantizerKind.BinaryWeightNet);

    /// <summary>Ternary Weight Network (2-bit codes).</summary>
    public static QuantizerChoice TernaryWeightNet { get; } = new(QuantizerKind.TernaryWeightNet);

    /// <summary>HitNet threshold ternary (2-bit codes).</summary>
    public static QuantizerChoice ThresholdTernary { get; } = new(QuantizerKind.ThresholdTernary);

    /// <summary>HitNet Bernoulli ternary, for activations.</summary>
    public static QuantizerChoice BernoulliTernary { get; } = new(QuantizerKind.BernoulliTernary);

    /// <summary>Alternating multi-bit quantization with <paramref name="bits"/> binary bases (1-4).</summary>
    public static QuantizerChoice Alternating(int bits) => new(QuantizerKind.AlternatingMultiBit, bits);

    /// <summary>k-bit uniform quantization (2-8 bits), optionally with a power-of-two and/or least-squared-error step.</summary>
    public static QuantizerChoice Uniform(int bits, bool powerOfTwoScale = false, bool minimumErrorStep = false) =>
        new(QuantizerKind.Uniform, bits, powerOfTwoScale, minimumErrorStep);

    /// <summary>
    /// Parses a registry name (<c>bc</c>, <c>twn</c>, <c>alt3</c>, <c>uniform4-pow2</c>, <c>uniform3-mse</c>, ...). Flags other than
    /// <c>-pow2</c> and <c>-mse</c> (scale grouping, stochastic rounding, learned or fixed steps, asymmetric levels, real-valued
    /// evaluation, thresholds, step multipliers) are not search choices and are rejected with <see cref="ArgumentException"/>.
    /// </summary>
    public static QuantizerChoice Parse(string name)
    {
        var options = QuantizerRegistry.Parse(name);
        if (options.PerRowScale != QuantizerRegistry.DefaultPerRowScale(options.Kind) || options.PerGateScale || options.StochasticRounding || options.LearnedScale
            || options.StepSizeMultiplier != 1.0 || options.AsymmetricLevels || options.FixedStep || options.RealValuedEvaluation
            || options.TernaryThreshold != 0 || options.TernaryThresholdFromMaximum)
            throw new ArgumentException(
                $"Quantizer choice '{name}': a sweep choice is a method, a bit width and optionally -pow2 and -mse; '-row', '-gate', '-tensor', '-sr', '-lsq', '-asym', " +
                "'-fixed', '-real', '-max', '-theta' and '@multiplier' are not searched. " +
                "Set them on the trial runner's template options instead.", nameof(name));
        return new QuantizerChoice(options.Kind, options.Bits, options.PowerOfTwoScale, options.MinimumErrorStep);
    }

    /// <summary>New <see cref="QuantizerOptions"/> for this choice (the method's default scale grouping: per row for alt, per tensor otherwise; deterministic rounding).</summary>
    public QuantizerOptions ToOptions() => new()
    {
        Kind = Kind,
        Bits = Kind == QuantizerKind.None ? 0 : Bits,
        PowerOfTwoScale = PowerOfTwoScale,
        MinimumErrorStep = MinimumErrorStep,
    };

    /// <summary>The registry name.</summary>
    public override string ToString() => Name;
}

/// <summary>Writes a <see cref="QuantizerChoice"/> as its registry name.</summary>
internal sealed class QuantizerChoiceJsonConverter : JsonConverter<QuantizerChoice>
{
    public override QuantizerChoice Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType != JsonTokenType.String)
            throw new JsonException("A quantizer choice is written as its registry name, e.g. \"twn\" or \"uniform4-pow2\".");
        try
        {
            return QuantizerChoice.Parse(reader.GetString()!);
        }
        catch (ArgumentException e)
        {
            throw new JsonException(e.Message, e);
        }
    }

    public override void Write(Utf8JsonWriter writer, QuantizerChoice value, JsonSerializerOptions options) => writer.WriteStringValue(value.Name);
}
