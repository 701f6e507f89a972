using System.Numerics;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized;

/// <summary>
/// <see cref="QuantizerKind.Uniform"/>: k-bit uniform quantization (k = 2-8) for weights or activations.
/// Levels <c>-Qn..+Qp</c> with <c>Qp = 2^(k-1) - 1</c> and <c>Qn = Qp</c> (symmetric, the default) or, with
/// <see cref="QuantizerOptions.AsymmetricLevels"/> (weights only), <c>Qn = 2^(k-1)</c>, every k-bit two's complement code
/// (the k-bit uniform quantization HitNet, Wang et al. 2018, compares with: 4 levels at 2 bits); <c>q(x) = s * round(clamp(x / s, -Qn, Qp))</c> (round
/// half to even). Step <c>s = max |x| / Qn</c> per tensor or per row (all-zero groups use s = 1), or with
/// <see cref="QuantizerOptions.MinimumErrorStep"/> the fraction of it with the least squared error, then:
/// <list type="number">
/// <item>times <see cref="QuantizerOptions.StepSizeMultiplier"/> (applied first, so a multiplier below 1 clips the largest values);</item>
/// <item>with <see cref="QuantizerOptions.PowerOfTwoScale"/>, rounded up to a power of two, <c>2^ceil(log2 s)</c>, so nothing clips
/// (beyond what the multiplier clipped) and dequantization is a shift; with a minimum-error step, the power of two below or
/// above with the smaller error.</item>
/// </list>
/// With <see cref="QuantizerOptions.StochasticRounding"/> training rounds <c>floor(x / s + u)</c>, u ~ U[0, 1), which is
/// unbiased inside the range (Li et al. 2017); evaluation always rounds to nearest. With
/// <see cref="QuantizerOptions.LearnedScale"/> the step is a parameter (LSQ, Esser et al. 2020) initialized to
/// <c>max |x| / Qn</c> (or the minimum-error step) at the first forward (or <see cref="Encode"/>); its gradient is LSQ's
/// (<c>round(x/s) - x/s</c> inside the range, <c>-Qn</c> or <c>Qp</c> outside) times <c>1 / sqrt(n * Qp)</c>, n = values
/// per group; the multiplier then scales the learned step. With <see cref="QuantizerOptions.FixedStep"/> the step above
/// (multiplier and power of two included) is computed once, from the first tensor the quantizer sees, kept as a buffer that
/// saves with the model, and never re-derived: the fixed grid of Li et al. 2017 (Section 3, <c>w_{t+1} = Q(w_t - lr g_t)</c>
/// on a grid of fixed resolution), which training without float shadow weights needs. The input's straight-through
/// gradient is 1 inside the clip range <c>[-Qn s, Qp s]</c> and 0 outside. Stored as <see cref="CodeLayout.SignedInteger"/> with k bits.
/// With the step derived from each tensor, or learned per tensor once its first forward has set it, it has a span form
/// (<see cref="ISpanActivationQuantizer"/>), so activation-quantized cells run their sequence functions.
/// </summary>
internal sealed class UniformQuantizer : Quantizer, ISpanActivationQuantizer
{
    private readonly QuantizerOptions _options;
    private readonly int _qp;
    private static readonly Scalar MinStep = 1e-12;

    // Qp = 2^(k-1) - 1, -Qp and -2^(k-1) for k = 0..8 (entries below 2 bits unused), kept alive for every call (see Scalars).
    private static readonly Scalar[] PositiveLevels = Enumerable.Range(0, 9).Select(k => ((1 << Math.Max(k - 1, 0)) - 1).ToScalar()).ToArray();
    private static readonly Scalar[] NegativeLevels = Enumerable.Range(0, 9).Select(k => (1 - (1 << Math.Max(k - 1, 0))).ToScalar()).ToArray();
    private static readonly Scalar[] TwosComplementLowest = Enumerable.Range(0, 9).Select(k => (-(1 << Math.Max(k - 1, 0))).ToScalar()).ToArray();
    private static readonly Scalar[] TwosComplementHalfRange = Enumerable.Range(0, 9).Select(k => (1 << Math.Max(k - 1, 0)).ToScalar()).ToArray();
    private readonly Scalar _lowest;
    private readonly Scalar _stepDivisor;
    private const string StepName = "step";
    private bool _hasStep;
    private bool _stepReady;

    /// <summary>Creates the quantizer; <paramref name="options"/> must already be valid (see <see cref="QuantizerRegistry.Validate"/>).</summary>
    /// <param name="options">Kind Uniform and its settings.</param>
    /// <param name="rows">
    /// Rows of the tensor this instance will quantize, for a learned per-row step: the parameter is then created now,
    /// before an optimizer collects parameters. 0 = unknown (a per-row learned step is then created at the first forward).
    /// </param>
    public UniformQuantizer(QuantizerOptions options, long rows = 0) : base(nameof(UniformQuantizer))
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options.Clone();
        Bits = options.Bits == 0 ? 4 : options.Bits;
        _qp = (1 << (Bits - 1)) - 1;
        _lowest = options.AsymmetricLevels ? TwosComplementLowest[Bits] : NegativeLevels[Bits];
        _stepDivisor = options.AsymmetricLevels ? TwosComplementHalfRange[Bits] : PositiveLevels[Bits];
        if ((_options.LearnedScale || _options.FixedStep) && (!_options.PerRowScale || rows > 0))
            CreateStep(_options.PerRowScale ? rows : 1, torch.CPU);
    }

    /// <inheritdoc />
    public override string RegistryName => QuantizerRegistry.NameOf(_options);

    /// <inheritdoc />
    public override int Bits { get; }

    /// <summary>The settings this quantizer was created with (a copy).</summary>
    public QuantizerOptions Options => _options.Clone();

    /// <summary>Largest code magnitude, 2^(bits-1) - 1.</summary>
    public int MaxLevel => _qp;

    /// <summary>The learned step parameter ([groups, 1]); null unless <see cref="QuantizerOptions.LearnedScale"/> (or not yet created).</summary>
    public Parameter? Step => _hasStep && _options.LearnedScale ? get_parameter(StepName) : null;

    /// <summary>The fixed step buffer ([groups, 1], 0 until the first forward); null unless <see cref="QuantizerOptions.FixedStep"/>.</summary>
    public Tensor? FixedStep => _hasStep && _options.FixedStep ? get_buffer(StepName) : null;

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var g = QuantizerMath.Grouped(input, _options.PerRowScale);
        bool stochastic = training && _options.StochasticRounding;
        Tensor q;
        if (_options.LearnedScale)
        {
            // LSQ: value exactly s * r, gradients as in Esser et al. (grad-scaled step, straight-through rounding).
            var step = EffectiveStep(EnsureStep(g), g.shape[1]);
            var v = ClampToLevels(g / step);
            var r = Round(v.detach(), stochastic);
            var rounded = r.add((v - v.detach()), Scalars.One);
            q = rounded * step;
        }
        else
        {
            var w = g.detach();
            var s = _options.FixedStep ? EnsureStep(w) : DerivedStep(w);
            q = Round(ClampToLevels(w / s), stochastic) * s;
            var (lowest, highest) = (s.mul(_lowest), s.mul(PositiveLevels[Bits]));
            q = QuantizerMath.StraightThrough(q, g, x => x.clamp(lowest, highest));
        }
        return q.reshape(input.shape).MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    /// <remarks>
    /// With the step derived from each tensor as max |x| / Qn, or with a learned per-tensor step once the first forward has
    /// initialized it (until then the autograd loop runs, as the step's start comes from the first tensor); not with a fixed
    /// or minimum-error step (neither is an activation quantizer's).
    /// </remarks>
    public override ISpanActivationQuantizer? SpanForm => HasDerivedStep || HasReadyLearnedStep ? this : null;

    private bool HasDerivedStep => !_options.LearnedScale && !_options.FixedStep && !_options.MinimumErrorStep;

    private bool HasReadyLearnedStep => _options.LearnedScale && !_options.PerRowScale && _stepReady;

    /// <inheritdoc />
    public Tensor? StepInput(long count) => HasReadyLearnedStep ? EffectiveStep(Step!, count).reshape(1) : null;

    /// <inheritdoc />
    public void Quantize<T>(Span<T> values, Span<T> gradientFactors, int rows, int width, ScalarType dtype, Device device)
        where T : unmanaged, IFloatingPointIeee754<T>
        => Quantize(values, gradientFactors, default, HasReadyLearnedStep ? LearnedStepValue<T>() : T.Zero, rows, width, dtype, device);

    /// <inheritdoc />
    /// <remarks>
    /// With a learned step: <c>v = x / s</c>, <c>q = s round(clamp(v, -Qn, Qp))</c>, the straight-through factor
    /// <c>1{-Qn &lt;= v &lt;= Qp}</c> and LSQ's <c>d q / d s</c>: <c>round(v) - v</c> inside the range, the clip level
    /// outside (Esser et al. 2020, eq. 3), which the sequence function scales through <see cref="StepInput"/>. Without a
    /// learned step <paramref name="step"/> is ignored.
    /// </remarks>
    public void Quantize<T>(Span<T> values, Span<T> gradientFactors, Span<T> stepFactors, T step, int rows, int width, ScalarType dtype, Device device)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (!HasDerivedStep && !HasReadyLearnedStep)
            throw new InvalidOperationException($"Quantizer '{RegistryName}' has a fixed, minimum-error, per-row learned or uninitialized learned step and no span form.");
        int groups = _options.PerRowScale ? rows : 1, size = values.Length / groups;
        bool stochastic = training && _options.StochasticRounding;
        // forward's draw: one uniform per value of the grouped [groups, values per group] view.
        using var noise = stochastic ? TrainingRandom.Rand(new long[] { groups, size }, dtype, device) : null;
        var u = TensorSpans.OfOptional<T>(noise);
        // Levels -Qn..Qp with Qn = Qp (symmetric) or 2^(k-1) (every two's complement code); the step divides max |x| by Qn.
        int lowestLevel = _options.AsymmetricLevels ? -(1 << (Bits - 1)) : -_qp;
        T lowest = T.CreateChecked(lowestLevel), highest = T.CreateChecked(_qp), divisor = -lowest;
        if (HasReadyLearnedStep)
        {
            QuantizeWithLearnedStep(values, gradientFactors, stepFactors, u, step, lowest, highest);
            return;
        }
        stepFactors.Clear();
        T multiplier = T.CreateChecked(_options.StepSizeMultiplier), two = T.CreateChecked(2);
        for (int group = 0; group < groups; group++)
        {
            var x = values.Slice(group * size, size);
            var factors = gradientFactors.Slice(group * size, size);
            // The step as DerivedStep makes it: max |x| / Qn (1 for an all-zero or non-finite group), times the multiplier,
            // then up to a power of two.
            T s = T.Abs(System.Numerics.Tensors.TensorPrimitives.MaxMagnitude<T>(x)) / divisor;
            if (!(s > T.Zero) || !T.IsFinite(s)) s = T.One;
            if (_options.StepSizeMultiplier != 1.0) s *= multiplier;
            if (_options.PowerOfTwoScale)
            {
                T p = T.Exp2(T.Ceiling(T.Log2(s)));
                s = p >= s ? p : p * two;
            }
            T low = s * lowest, high = s * highest;
            for (int k = 0; k < size; k++)
            {
                T value = x[k];
                factors[k] = value >= low && value <= high ? T.One : T.Zero;
                T level = T.Clamp(value / s, lowest, highest);
                level = stochastic ? T.Clamp(T.Floor(level + u[group * size + k]), lowest, highest) : T.Round(level);
                x[k] = level * s;
            }
        }
    }

    /// <summary>The learned step's value as forward and <see cref="StepInput"/> compute it (float32: clamped, times the multiplier).</summary>
    private T LearnedStepValue<T>() where T : unmanaged, IFloatingPointIeee754<T>
    {
        using var noGrad = torch.no_grad();
        using var step = QuantizerMath.TimesMultiplier(Step!.detach().clamp_min(MinStep), _options.StepSizeMultiplier);
        return T.CreateChecked(step.item<float>());
    }

    /// <summary>The learned-step rule on one per-tensor group with step <paramref name="s"/> (see the overload with step factors).</summary>
    private static void QuantizeWithLearnedStep<T>(Span<T> x, Span<T> factors, Span<T> stepFactors, ReadOnlySpan<T> noise, T s, T lowest, T highest)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        bool learnsStep = !stepFactors.IsEmpty;
        for (int k = 0; k < x.Length; k++)
        {
            T v = x[k] / s;
            bool inside = v >= lowest && v <= highest;
            T level = T.Clamp(v, lowest, highest);
            level = noise.IsEmpty ? T.Round(level) : T.Clamp(T.Floor(level + noise[k]), lowest, highest);
            factors[k] = inside ? T.One : T.Zero;
            if (learnsStep) stepFactors[k] = inside ? level - v : level;
            x[k] = level * s;
        }
    }

    /// <summary>
    /// The step as forward uses it for a tensor whose groups hold <paramref name="count"/> values each: <paramref name="step"/>
    /// clamped above 0, its gradient scaled by LSQ's <c>1 / sqrt(count * Qp)</c> (the value unchanged), times the multiplier.
    /// </summary>
    private Tensor EffectiveStep(Tensor step, long count)
    {
        using var scope = NewDisposeScope();
        var s = step.clamp_min(MinStep);
        using var gradScale = (1.0 / Math.Sqrt(count * (double)_qp)).ToScalar();
        var scaled = s.mul(gradScale);
        return QuantizerMath.TimesMultiplier(s.detach().add(scaled - scaled.detach(), Scalars.One), _options.StepSizeMultiplier).MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    public override QuantizedWeights Encode(Tensor weight)
    {
        using var scope = NewDisposeScope();
        using var noGrad = torch.no_grad();
        var w = QuantizerMath.CheckEncodable(weight, RegistryName);
        var g = QuantizerMath.Grouped(w, _options.PerRowScale);
        Tensor s;
        if (_options.LearnedScale)
        {
            s = QuantizerMath.TimesMultiplier(EnsureStep(g).detach().clamp_min(MinStep), _options.StepSizeMultiplier);
        }
        else
        {
            s = _options.FixedStep ? EnsureStep(g) : DerivedStep(g);
        }
        var codes = Round(ClampToLevels(g / s), false);
        return QuantizerMath.ToWeights(CodeLayout.SignedInteger, Bits, w, _options.PerRowScale, codes, s);
    }

    /// <summary>Step [groups, 1] without learning: the initial step, times the multiplier, then the power-of-two rounding.</summary>
    private Tensor DerivedStep(Tensor g)
    {
        // The search sorts the tensor: reused while the values do not change (evaluation, reports).
        if (_options.MinimumErrorStep) return Reused(g, x => MinimumErrorStep.Of(x, _qp, _options.StepSizeMultiplier, _options.PowerOfTwoScale));
        var s = QuantizerMath.TimesMultiplier(InitialStep(g), _options.StepSizeMultiplier);
        if (_options.PowerOfTwoScale) s = PowerOfTwoAtLeast(s);
        return s;
    }

    /// <summary>Smallest power of two &gt;= s (elementwise, s &gt; 0).</summary>
    internal static Tensor PowerOfTwoAtLeast(Tensor s)
    {
        var p = torch.exp2(torch.ceil(torch.log2(s)));
        return p.where(p >= s, p.mul(Scalars.Two));
    }

    /// <summary>Round half to even, or (stochastic) floor(v + u) clamped back into the levels (float rounding of v + u can reach Qp + 1).</summary>
    private Tensor Round(Tensor v, bool stochastic) =>
        stochastic ? ClampToLevels(v.add(TrainingRandom.RandLike(v), Scalars.One).floor()) : v.round();

    /// <summary><paramref name="v"/> clamped to [-Qn, Qp].</summary>
    private Tensor ClampToLevels(Tensor v) => v.clamp(_lowest, PositiveLevels[Bits]);

    /// <summary>
    /// max |x| / Qn per group (all-zero groups 1), or with <see cref="QuantizerOptions.MinimumErrorStep"/> the fraction of it
    /// with the least squared error: the fixed step before the multiplier, and the learned step's start.
    /// </summary>
    private Tensor InitialStep(Tensor g) => _options.MinimumErrorStep
        ? MinimumErrorStep.Of(g, _qp, 1.0, false)
        : QuantizerMath.SafeScale(g.abs().amax(new long[] { 1 }, keepdim: true).div(_stepDivisor));

    private void CreateStep(long groups, Device device)
    {
        // The step belongs to the module, not to whatever dispose scope is open (a forward's, a test's): a parameter when
        // learned, a buffer (saved, never trained) when fixed.
        var zeros = torch.zeros(groups, 1, ScalarType.Float32, device);
        if (_options.LearnedScale)
        {
            var step = new Parameter(zeros);
            step.DetachFromDisposeScope();
            register_parameter(StepName, step);
        }
        else
        {
            zeros.DetachFromDisposeScope();
            register_buffer(StepName, zeros);
        }
        _hasStep = true;
    }

    /// <summary>
    /// The learned or fixed step, created (per-row with unknown rows) and initialized on first use: a learned one from
    /// max |x| / Qn (or the minimum-error step), a fixed one as <see cref="DerivedStep"/>.
    /// </summary>
    private Tensor EnsureStep(Tensor g)
    {
        if (!_hasStep) CreateStep(g.shape[0], g.device);
        var step = _options.LearnedScale ? Step! : FixedStep!;
        if (step.shape[0] != g.shape[0])
            throw new ArgumentException(
                $"Quantizer '{RegistryName}' learned {step.shape[0]} step(s) but got a tensor with {g.shape[0]} scale group(s); " +
                "use one quantizer instance per tensor.", "input");
        if (!_stepReady)
        {
            using (torch.no_grad())
            {
                // A step loaded from a saved model is nonzero: keep it. A fresh one is zero: initialize it.
                if (step.abs().max().item<float>() == 0f)
                {
                    var init = _options.LearnedScale ? InitialStep(g.detach()) : DerivedStep(g.detach());
                    step.copy_(init);
                }
            }
            _stepReady = true;
        }
        return step;
    }
}
