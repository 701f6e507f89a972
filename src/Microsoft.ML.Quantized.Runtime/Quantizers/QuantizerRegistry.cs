using System.Globalization;
using System.Text;

namespace Microsoft.ML.Quantized;

/// <summary>
/// Names and validates quantizer configurations (the training package's <c>QuantizerFactory</c> creates the quantizers); the one place that maps names to options.
/// <para>
/// Name grammar (lower case): a base name, then optional flags, then an optional step-size multiplier:
/// <c>base[-sr][-asym][-pow2][-lsq][-mse][-fixed][-max][-theta&lt;value&gt;][-real][-row|-gate|-tensor][@multiplier]</c>. Bases: <c>none</c>, <c>bc</c>, <c>sbc</c>, <c>bwn</c>,
/// <c>twn</c>, <c>ttq</c>, <c>zttq</c> (Zhu et al.'s trained ternary), <c>btq</c>, <c>alt1</c>..<c>alt4</c>, <c>uniform2</c>..<c>uniform8</c>. Flags:
/// <c>sr</c> stochastic rounding, <c>asym</c> all 2^k two's complement levels, <c>pow2</c> power-of-two step, <c>lsq</c> learned step, <c>mse</c> minimum-error step, <c>fixed</c> a step fixed at the first forward (uniform only),
/// <c>max</c> threshold from max |w| (ttq only) and <c>theta0.5</c> the threshold factor (ttq, zttq), <c>real</c> evaluation with the
/// real-valued weights (sbc only),
/// <c>row</c> per-row scales (methods with a scale; alt is per row without it), <c>gate</c> one scale per gate block of a recurrent
/// matrix (bwn, twn, ttq; Hou et al. 2019), <c>tensor</c> one set of alt coefficients per
/// tensor. Examples: <c>twn</c>, <c>twn-row</c>, <c>alt3</c>, <c>alt2-tensor</c>, <c>uniform4-sr</c>,
/// <c>uniform3-pow2</c>, <c>twn-gate</c>, <c>uniform2-asym</c>, <c>uniform4-lsq-row</c>, <c>uniform3-mse</c>, <c>uniform4@1.05</c>, <c>ttq-theta0.5</c>, <c>ttq-max</c>.
/// </para>
/// </summary>
internal static class QuantizerRegistry
{
    /// <summary>Default bits of <see cref="QuantizerKind.AlternatingMultiBit"/> (Bits = 0).</summary>
    public const int DefaultAlternatingBits = 2;

    /// <summary>Default bits of <see cref="QuantizerKind.Uniform"/> (Bits = 0).</summary>
    public const int DefaultUniformBits = 4;

    /// <summary>
    /// Default theta of <see cref="QuantizerKind.ThresholdTernary"/>'s threshold <c>delta = theta * E|w|</c>: 0.7, the value
    /// Li et al. (TWN, 2016) derive for this rule, which HitNet's threshold ternary quantization takes over.
    /// </summary>
    public const double DefaultTernaryThreshold = 0.7;

    /// <summary>Default theta of the maximum form <c>delta = theta * max|w|</c>: 0.05, Zhu et al. 2017's t.</summary>
    public const double DefaultTernaryThresholdOfMaximum = 0.05;

    /// <summary>The grammar of names, for error messages.</summary>
    public const string NameGrammar =
        "base[-sr][-asym][-pow2][-lsq][-mse][-fixed][-max][-theta<value>][-real][-row|-gate|-tensor][@multiplier] with base none, bc, sbc, bwn, twn, ttq, zttq, btq, alt1-alt4 or uniform2-uniform8 " +
        "(sr, asym, pow2, lsq, mse, fixed: uniform only; max: ttq only; theta: ttq, zttq; real: sbc only; row: methods with a scale, alt per row by default; gate: bwn, twn, ttq; tensor: alt only), e.g. twn, twn-row, twn-gate, alt3, alt2-tensor, uniform4-sr, uniform3-pow2, uniform3-mse, uniform4@1.05, ttq-theta0.5";

    private const string ThetaFlag = "theta";

    // Theta in a name: decimals without an exponent ("1E-05" would split at its '-').
    private const string ThetaFormat = "0.####################";

    /// <summary>Every base name with its default settings (flags and multipliers add to these).</summary>
    public static IReadOnlyList<string> KnownNames { get; } = new[]
    {
        "none", "bc", "sbc", "bwn", "twn", "ttq", "zttq", "btq",
        "alt1", "alt2", "alt3", "alt4",
        "uniform2", "uniform3", "uniform4", "uniform5", "uniform6", "uniform7", "uniform8",
    };

    /// <summary>
    /// The registry name of a configuration (round-trips through <see cref="Parse"/> for valid options). Settings a
    /// method ignores by design (per-row scales of none, bc, sbc, btq; bits equal to the method's own width) are
    /// left out, so equivalent configurations share one name; other settings are written as given, so an invalid
    /// combination shows in the name (and <see cref="Parse"/> rejects it).
    /// </summary>
    public static string NameOf(QuantizerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var sb = new StringBuilder(options.Kind switch
        {
            QuantizerKind.None => "none",
            QuantizerKind.BinaryConnect => "bc",
            QuantizerKind.StochasticBinary => "sbc",
            QuantizerKind.BinaryWeightNet => "bwn",
            QuantizerKind.TernaryWeightNet => "twn",
            QuantizerKind.ThresholdTernary => "ttq",
            QuantizerKind.TrainedTernary => "zttq",
            QuantizerKind.BernoulliTernary => "btq",
            QuantizerKind.AlternatingMultiBit => "alt" + EffectiveBits(options).ToString(CultureInfo.InvariantCulture),
            QuantizerKind.Uniform => "uniform" + EffectiveBits(options).ToString(CultureInfo.InvariantCulture),
            _ => "kind" + ((int)options.Kind).ToString(CultureInfo.InvariantCulture),
        });
        if (options.Kind == QuantizerKind.None) return sb.ToString();
        if (options.StochasticRounding) sb.Append("-sr");
        if (options.AsymmetricLevels) sb.Append("-asym");
        if (options.PowerOfTwoScale) sb.Append("-pow2");
        if (options.LearnedScale) sb.Append("-lsq");
        if (options.MinimumErrorStep) sb.Append("-mse");
        if (options.FixedStep) sb.Append("-fixed");
        if (options.TernaryThresholdFromMaximum) sb.Append("-max");
        if (options.TernaryThreshold != 0 && options.TernaryThreshold != DefaultTheta(options))
            sb.Append('-').Append(ThetaFlag).Append(options.TernaryThreshold.ToString(ThetaFormat, CultureInfo.InvariantCulture));
        if (options.RealValuedEvaluation) sb.Append("-real");
        if (HasScale(options.Kind) && options.PerRowScale != DefaultPerRowScale(options.Kind)) sb.Append(options.PerRowScale ? "-row" : "-tensor");
        if (options.PerGateScale) sb.Append("-gate");
        if (options.StepSizeMultiplier != 1.0)
            sb.Append('@').Append(options.StepSizeMultiplier.ToString("R", CultureInfo.InvariantCulture));
        return sb.ToString();
    }

    /// <summary>Parses a registry name back into options; throws <see cref="ArgumentException"/> naming the bad part.</summary>
    public static QuantizerOptions Parse(string name)
    {
        if (string.IsNullOrWhiteSpace(name))
            throw new ArgumentException($"A quantizer name is required. Names: {NameGrammar}.", nameof(name));
        var text = name.Trim().ToLowerInvariant();
        var options = new QuantizerOptions();

        var at = text.IndexOf('@');
        if (at >= 0)
        {
            var number = text[(at + 1)..];
            if (!double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out var multiplier))
                throw new ArgumentException(
                    $"Quantizer name '{name}': step-size multiplier '{number}' after '@' is not a number (e.g. uniform4@1.05).", nameof(name));
            options.StepSizeMultiplier = multiplier;
            text = text[..at];
        }

        var parts = text.Split('-');
        var baseName = parts[0];
        switch (baseName)
        {
            case "none": options.Kind = QuantizerKind.None; break;
            case "bc": options.Kind = QuantizerKind.BinaryConnect; break;
            case "sbc": options.Kind = QuantizerKind.StochasticBinary; break;
            case "bwn": options.Kind = QuantizerKind.BinaryWeightNet; break;
            case "twn": options.Kind = QuantizerKind.TernaryWeightNet; break;
            case "ttq": options.Kind = QuantizerKind.ThresholdTernary; break;
            case "zttq": options.Kind = QuantizerKind.TrainedTernary; break;
            case "btq": options.Kind = QuantizerKind.BernoulliTernary; break;
            default:
                if (TryBits(baseName, "alt", out var altBits)) { options.Kind = QuantizerKind.AlternatingMultiBit; options.Bits = altBits; }
                else if (TryBits(baseName, "uniform", out var uniBits)) { options.Kind = QuantizerKind.Uniform; options.Bits = uniBits; }
                else throw new ArgumentException($"Quantizer name '{name}': unknown method '{baseName}'. Names: {NameGrammar}.", nameof(name));
                break;
        }

        var seen = new HashSet<string>();
        foreach (var flag in parts.Skip(1))
        {
            var key = flag.StartsWith(ThetaFlag, StringComparison.Ordinal) ? ThetaFlag : flag;
            if (!seen.Add(key))
                throw new ArgumentException($"Quantizer name '{name}': flag '-{key}' appears twice.", nameof(name));
            if (key == ThetaFlag)
            {
                var number = flag[ThetaFlag.Length..];
                if (!double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out var theta))
                    throw new ArgumentException(
                        $"Quantizer name '{name}': threshold factor '{number}' after '-theta' is not a number (e.g. ttq-theta0.5).", nameof(name));
                options.TernaryThreshold = theta;
                continue;
            }
            switch (flag)
            {
                case "sr": options.StochasticRounding = true; break;
                case "asym": options.AsymmetricLevels = true; break;
                case "pow2": options.PowerOfTwoScale = true; break;
                case "lsq": options.LearnedScale = true; break;
                case "mse": options.MinimumErrorStep = true; break;
                case "fixed": options.FixedStep = true; break;
                case "max": options.TernaryThresholdFromMaximum = true; break;
                case "real": options.RealValuedEvaluation = true; break;
                case "row": options.PerRowScale = true; break;
                case "tensor": options.PerRowScale = false; break;
                case "gate": options.PerGateScale = true; break;
                default:
                    throw new ArgumentException(
                        $"Quantizer name '{name}': unknown flag '-{flag}'. Flags: -sr, -asym, -pow2, -lsq, -mse, -fixed, -max, -theta<value>, -real, -row, -gate, -tensor. Names: {NameGrammar}.", nameof(name));
            }
        }
        if (options.Kind == QuantizerKind.None && (parts.Length > 1 || at >= 0))
            throw new ArgumentException($"Quantizer name '{name}': 'none' takes no flags or multiplier.", nameof(name));
        if (options.PerRowScale && !HasScale(options.Kind))
            throw new ArgumentException(
                $"Quantizer name '{name}': '-row' needs a method with a scale (bwn, twn, ttq, zttq, alt, uniform); '{baseName}' has none.", nameof(name));
        if (seen.Contains("tensor") && (seen.Contains("row") || options.Kind != QuantizerKind.AlternatingMultiBit))
            throw new ArgumentException(
                $"Quantizer name '{name}': '-tensor' only turns alt's per-row coefficients into one set per tensor (e.g. alt2-tensor), and not with '-row'; " +
                "the other methods are per tensor without a flag.", nameof(name));

        try
        {
            ValidateCommon(options, "name");
        }
        catch (ArgumentException e)
        {
            throw new ArgumentException($"Quantizer name '{name}' is not a valid configuration: {e.Message}", nameof(name), e);
        }
        return options;
    }

    /// <summary>
    /// Checks a weight quantizer and throws <see cref="ArgumentException"/> (or <see cref="ArgumentOutOfRangeException"/>)
    /// naming the option, the value and the fix. Rejects <see cref="QuantizerKind.BernoulliTernary"/>, which is for activations.
    /// </summary>
    public static void Validate(QuantizerOptions options, string optionName)
    {
        ValidateCommon(options, optionName);
        if (options.Kind == QuantizerKind.BernoulliTernary)
            throw new ArgumentException(
                $"{optionName}.Kind = BernoulliTernary ('btq') quantizes activations in [-1, 1], not weights. " +
                "For ternary weights use TernaryWeightNet ('twn') or ThresholdTernary ('ttq').", optionName);
    }

    /// <summary>
    /// Checks an activation quantizer: only <see cref="QuantizerKind.None"/>, <see cref="QuantizerKind.BernoulliTernary"/>
    /// and <see cref="QuantizerKind.Uniform"/> (no learned per-row step: rows of an activation are batch entries; a
    /// minimum-error step only as a learned step's start).
    /// Throws <see cref="ArgumentException"/> naming the option, the value and the fix.
    /// </summary>
    public static void ValidateActivation(QuantizerOptions options, string optionName)
    {
        ValidateCommon(options, optionName);
        if (options.Kind is not (QuantizerKind.None or QuantizerKind.BernoulliTernary or QuantizerKind.Uniform))
            throw new ArgumentException(
                $"{optionName}.Kind = {options.Kind} ('{NameOf(options)}') is a weight quantizer. " +
                "Activations take None, BernoulliTernary ('btq') or Uniform ('uniform2'-'uniform8').", optionName);
        if (options.FixedStep)
            throw new ArgumentException(
                $"{optionName}.FixedStep = true ('{NameOf(options)}') is for weights (a step fixed at the first forward would be one batch's). " +
                "Set it false; for a trained activation step use LearnedScale = true (e.g. 'uniform4-lsq').", optionName);
        if (options.AsymmetricLevels)
            throw new ArgumentException(
                $"{optionName}.AsymmetricLevels = true ('{NameOf(options)}') is for weights: the packed model quantizes activations on the " +
                "symmetric levels. Set it false (e.g. 'uniform2' for activations).", optionName);
        if (options.MinimumErrorStep && !options.LearnedScale)
            throw new ArgumentException(
                $"{optionName}: MinimumErrorStep = true ('{NameOf(options)}') would search a new step for every activation tensor (a sort per forward). " +
                "Use it for weights, or with LearnedScale = true (e.g. 'uniform4-lsq-mse') to start a learned step from it.", optionName);
        if (options.LearnedScale && options.PerRowScale)
            throw new ArgumentException(
                $"{optionName}: LearnedScale = true with PerRowScale = true is not valid for activations (their rows are batch " +
                "entries, whose count varies). Use a per-tensor learned step (PerRowScale = false).", optionName);
    }

    /// <summary>The bits a configuration stores per value (Bits = 0 resolved to the method's own width; 32 for none).</summary>
    public static int EffectiveBits(QuantizerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Bits != 0) return options.Bits;
        return options.Kind switch
        {
            QuantizerKind.None => 32,
            QuantizerKind.BinaryConnect or QuantizerKind.StochasticBinary or QuantizerKind.BinaryWeightNet => 1,
            QuantizerKind.AlternatingMultiBit => DefaultAlternatingBits,
            QuantizerKind.Uniform => DefaultUniformBits,
            _ => 2,
        };
    }

    /// <summary>
    /// The threshold factor theta of a <see cref="QuantizerKind.ThresholdTernary"/> configuration: <see cref="QuantizerOptions.TernaryThreshold"/>,
    /// or when 0 the default of its form (<see cref="DefaultTernaryThreshold"/>, or <see cref="DefaultTernaryThresholdOfMaximum"/> with
    /// <see cref="QuantizerOptions.TernaryThresholdFromMaximum"/>).
    /// </summary>
    public static double EffectiveTernaryThreshold(QuantizerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return options.TernaryThreshold != 0 ? options.TernaryThreshold : DefaultTheta(options);
    }

    private static double DefaultTheta(QuantizerOptions options) =>
        ThresholdFromMaximum(options) ? DefaultTernaryThresholdOfMaximum : DefaultTernaryThreshold;

    /// <summary>True for the methods whose threshold is theta times max |w|.</summary>
    private static bool ThresholdFromMaximum(QuantizerOptions options) =>
        options.TernaryThresholdFromMaximum || options.Kind == QuantizerKind.TrainedTernary;

    /// <summary>
    /// <see cref="QuantizerOptions.PerRowScale"/> when it is not set: true for <see cref="QuantizerKind.AlternatingMultiBit"/>
    /// (Xu et al. 2018 quantize the weight matrix row by row, Figure 3), false for the others.
    /// </summary>
    public static bool DefaultPerRowScale(QuantizerKind kind) => kind == QuantizerKind.AlternatingMultiBit;

    /// <summary>True for methods with a scale (per-row scales and the step-size multiplier apply).</summary>
    public static bool HasScale(QuantizerKind kind) => kind is QuantizerKind.BinaryWeightNet or QuantizerKind.TernaryWeightNet
        or QuantizerKind.ThresholdTernary or QuantizerKind.TrainedTernary or QuantizerKind.AlternatingMultiBit or QuantizerKind.Uniform;

    /// <summary>Checks that do not depend on whether the tensor holds weights or activations.</summary>
    internal static void ValidateCommon(QuantizerOptions options, string optionName)
    {
        if (options is null) throw new ArgumentNullException(optionName, $"{optionName} must not be null; use new QuantizerOptions() for float.");
        var kind = options.Kind;
        if (!Enum.IsDefined(kind))
            throw new ArgumentOutOfRangeException(optionName, kind,
                $"{optionName}.Kind = {(int)kind} is not a quantizer kind. Known: {string.Join(", ", Enum.GetNames<QuantizerKind>())}.");

        var bits = options.Bits;
        var (min, max, allowed) = kind switch
        {
            QuantizerKind.None => (32, 32, "0 or 32 (float)"),
            QuantizerKind.BinaryConnect or QuantizerKind.StochasticBinary or QuantizerKind.BinaryWeightNet => (1, 1, "0 or 1 (binary)"),
            QuantizerKind.TernaryWeightNet or QuantizerKind.ThresholdTernary or QuantizerKind.TrainedTernary or QuantizerKind.BernoulliTernary => (2, 2, "0 or 2 (ternary codes take 2 bits)"),
            QuantizerKind.AlternatingMultiBit => (1, 4, "0 (= 2) or 1-4"),
            _ => (2, 8, "0 (= 4) or 2-8"),
        };
        if (bits != 0 && (bits < min || bits > max))
            throw new ArgumentOutOfRangeException(optionName, bits,
                $"{optionName}.Bits = {bits} is not valid for {kind}: use {allowed}." +
                (kind is QuantizerKind.AlternatingMultiBit or QuantizerKind.Uniform ? "" : " For more bits use AlternatingMultiBit (1-4) or Uniform (2-8)."));

        if (options.StochasticRounding && kind != QuantizerKind.Uniform)
            throw new ArgumentException(
                $"{optionName}.StochasticRounding = true is only for Uniform, not {kind}. " +
                "Set it false, or use Kind = Uniform (e.g. 'uniform4-sr'); StochasticBinary and BernoulliTernary are already stochastic.", optionName);
        if (options.PowerOfTwoScale && kind != QuantizerKind.Uniform)
            throw new ArgumentException(
                $"{optionName}.PowerOfTwoScale = true is only for Uniform, not {kind}. Set it false, or use e.g. 'uniform3-pow2'.", optionName);
        if (options.LearnedScale && kind != QuantizerKind.Uniform)
            throw new ArgumentException(
                $"{optionName}.LearnedScale = true is only for Uniform, not {kind}. Set it false, or use e.g. 'uniform4-lsq'.", optionName);
        if (options.MinimumErrorStep && kind != QuantizerKind.Uniform)
            throw new ArgumentException(
                $"{optionName}.MinimumErrorStep = true is only for Uniform, not {kind}. Set it false, or use e.g. 'uniform3-mse'.", optionName);
        var theta = options.TernaryThreshold;
        if (theta != 0 && kind is not (QuantizerKind.ThresholdTernary or QuantizerKind.TrainedTernary))
            throw new ArgumentException(
                $"{optionName}.TernaryThreshold = {theta.ToString(CultureInfo.InvariantCulture)} is only for ThresholdTernary and TrainedTernary, not {kind}. Leave it at 0, or use e.g. 'ttq-theta0.5'.", optionName);
        if (options.TernaryThresholdFromMaximum && kind != QuantizerKind.ThresholdTernary)
            throw new ArgumentException(
                $"{optionName}.TernaryThresholdFromMaximum = true is only for ThresholdTernary, not {kind}. Set it false, or use 'ttq-max'.", optionName);
        if (theta != 0 && (!double.IsFinite(theta) || theta < 0 || (ThresholdFromMaximum(options) && theta >= 1)))
            throw new ArgumentOutOfRangeException(optionName, theta,
                $"{optionName}.TernaryThreshold = {theta.ToString(CultureInfo.InvariantCulture)} is not valid: use 0 (the default, " +
                (ThresholdFromMaximum(options)
                    ? $"{DefaultTernaryThresholdOfMaximum.ToString(CultureInfo.InvariantCulture)}) or a value in (0, 1) for the threshold theta * max|w|."
                    : $"{DefaultTernaryThreshold.ToString(CultureInfo.InvariantCulture)}) or a finite value > 0 for the threshold theta * mean|w|."));
        if (options.RealValuedEvaluation && kind != QuantizerKind.StochasticBinary)
            throw new ArgumentException(
                $"{optionName}.RealValuedEvaluation = true is only for StochasticBinary, not {kind}. Set it false, or use 'sbc-real'.", optionName);
        if (options.AsymmetricLevels && kind != QuantizerKind.Uniform)
            throw new ArgumentException(
                $"{optionName}.AsymmetricLevels = true is only for Uniform, not {kind}. Set it false, or use e.g. 'uniform2-asym'.", optionName);
        if (options.PerGateScale && kind is not (QuantizerKind.BinaryWeightNet or QuantizerKind.TernaryWeightNet or QuantizerKind.ThresholdTernary))
            throw new ArgumentException(
                $"{optionName}.PerGateScale = true is only for BinaryWeightNet, TernaryWeightNet and ThresholdTernary (Hou et al.'s per-gate scales), not {kind}. " +
                "Set it false, or use e.g. 'twn-gate'.", optionName);
        if (options.PerGateScale && options.PerRowScale)
            throw new ArgumentException(
                $"{optionName}: PerGateScale = true cannot be combined with PerRowScale = true (a row is finer than its gate). Set one of them false.", optionName);
        if (options.AsymmetricLevels && options.MinimumErrorStep)
            throw new ArgumentException(
                $"{optionName}: AsymmetricLevels = true cannot be combined with MinimumErrorStep = true (the step search assumes symmetric levels). Set one of them false.", optionName);
        if (options.FixedStep && kind != QuantizerKind.Uniform)
            throw new ArgumentException(
                $"{optionName}.FixedStep = true is only for Uniform, not {kind}. Set it false, or use e.g. 'uniform4-sr-fixed'.", optionName);
        if (options.FixedStep && options.LearnedScale)
            throw new ArgumentException(
                $"{optionName}: FixedStep = true cannot be combined with LearnedScale = true (a learned step changes by gradient). Set one of them false.", optionName);
        if (options.LearnedScale && options.PowerOfTwoScale)
            throw new ArgumentException(
                $"{optionName}: LearnedScale = true cannot be combined with PowerOfTwoScale = true (a learned step is not a power of two). Set one of them false.", optionName);

        var m = options.StepSizeMultiplier;
        if (!double.IsFinite(m) || m <= 0)
            throw new ArgumentOutOfRangeException(optionName, m,
                $"{optionName}.StepSizeMultiplier = {m.ToString(CultureInfo.InvariantCulture)} is not valid: use a finite value > 0 (1 = unchanged).");
        if (m != 1.0 && !HasScale(kind))
            throw new ArgumentException(
                $"{optionName}.StepSizeMultiplier = {m.ToString(CultureInfo.InvariantCulture)} has no effect on {kind}, which has no scale. " +
                "Leave it at 1, or use bwn, twn, ttq, alt or uniform.", optionName);
    }

    private static bool TryBits(string baseName, string prefix, out int bits)
    {
        bits = 0;
        if (!baseName.StartsWith(prefix, StringComparison.Ordinal) || baseName.Length == prefix.Length) return false;
        var digits = baseName[prefix.Length..];
        return digits.All(char.IsAsciiDigit) && digits.Length <= 2
            && int.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out bits);
    }
}
