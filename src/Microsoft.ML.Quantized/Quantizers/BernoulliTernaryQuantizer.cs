using System.Numerics;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized;

/// <summary>
/// <see cref="QuantizerKind.BernoulliTernary"/>, HitNet's Bernoulli ternary quantization (BTQ, Wang et al. 2018) for
/// activations in [-1, 1] (tanh outputs, and sigmoid outputs in [0, 1]). Training: <c>q(x) = sign(x)</c> with
/// probability <c>|x|</c> (x clamped to [-1, 1]), else 0, so E[q(x)] = x on [-1, 1]. Evaluation: the deterministic
/// <c>sign(x) * 1{|x| &gt; 0.5}</c> (the most likely ternary value). Straight-through gradient: the identity inside
/// [-1, 1], 0 outside. Works on tensors of any shape; <see cref="Encode"/> (2-D only) stores the evaluation rule as
/// <see cref="CodeLayout.SignedInteger"/> with 2 bits and scale 1. Random draws use torch's generator
/// (the training run's own generator, <see cref="TrainingRandom"/>, makes them repeatable). Its span form
/// (<see cref="ISpanActivationQuantizer"/>) lets the sequence functions quantize a step's gates and states without a graph.
/// </summary>
internal sealed class BernoulliTernaryQuantizer : Quantizer, ISpanActivationQuantizer
{
    /// <summary>Creates the quantizer (no options: fixed range [-1, 1], no scale).</summary>
    public BernoulliTernaryQuantizer() : base(nameof(BernoulliTernaryQuantizer)) { }

    /// <inheritdoc />
    public override string RegistryName => "btq";

    /// <inheritdoc />
    public override int Bits => 2;

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var x = input.detach();
        Tensor q;
        if (training)
        {
            var a = x.clamp(Scalars.MinusOne, Scalars.One);
            q = a.sign() * (TrainingRandom.RandLike(a) < a.abs()).to_type(x.dtype);
        }
        else
        {
            q = Deterministic(x);
        }
        return QuantizerMath.StraightThrough(q, input, v => v.clamp(Scalars.MinusOne, Scalars.One)).MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    public override ISpanActivationQuantizer SpanForm => this;

    /// <inheritdoc />
    public void Quantize<T>(Span<T> values, Span<T> gradientFactors, int rows, int width, ScalarType dtype, Device device)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (!training)
        {
            Ternarize(values, gradientFactors, default, T.CreateChecked(0.5));
            return;
        }
        // One draw of the tensor's shape, as forward's RandLike makes: the same values from the same generator state.
        using var noise = TrainingRandom.Rand(new long[] { rows, width }, dtype, device);
        Ternarize(values, gradientFactors, TensorSpans.Of<T>(noise), T.Zero);
    }

    /// <summary>
    /// Both rules at once, in place and without branches: <c>sign(x)</c> where <c>min(|x|, 1)</c> exceeds the threshold (the
    /// uniform draw <c>noise[k]</c> in training, <paramref name="fixedThreshold"/> 0.5 in evaluation with no noise), else 0;
    /// the straight-through factors <c>1{|x| &lt;= 1}</c> to <paramref name="factors"/>.
    /// </summary>
    private static void Ternarize<T>(Span<T> values, Span<T> factors, ReadOnlySpan<T> noise, T fixedThreshold)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int k = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var one = Vector<T>.One;
            var minusOne = -one;
            var fixedThresholds = new Vector<T>(fixedThreshold);
            for (; k <= values.Length - Vector<T>.Count; k += Vector<T>.Count)
            {
                var x = new Vector<T>(values[k..]);
                var magnitude = Vector.Abs(x);
                Vector.ConditionalSelect(Vector.LessThanOrEqual(magnitude, one), one, Vector<T>.Zero).CopyTo(factors[k..]);
                var thresholds = noise.IsEmpty ? fixedThresholds : new Vector<T>(noise[k..]);
                var signs = Vector.ConditionalSelect(Vector.LessThan(x, Vector<T>.Zero), minusOne, one);
                Vector.ConditionalSelect(Vector.GreaterThan(Vector.Min(magnitude, one), thresholds), signs, Vector<T>.Zero).CopyTo(values[k..]);
            }
        }
        for (; k < values.Length; k++)
        {
            T magnitude = T.Abs(values[k]);
            factors[k] = magnitude <= T.One ? T.One : T.Zero;
            T threshold = noise.IsEmpty ? fixedThreshold : noise[k];
            values[k] = T.Min(magnitude, T.One) > threshold ? (values[k] < T.Zero ? -T.One : T.One) : T.Zero;
        }
    }

    /// <inheritdoc />
    public override QuantizedWeights Encode(Tensor weight)
    {
        using var scope = NewDisposeScope();
        var w = QuantizerMath.CheckEncodable(weight, RegistryName);
        return QuantizerMath.ToWeights(CodeLayout.SignedInteger, 2, w, false, Deterministic(w), torch.ones(1, 1));
    }

    private static Tensor Deterministic(Tensor x) => x.sign() * (x.abs() > Scalars.Half).to_type(x.dtype);
}
