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
        T half = T.CreateChecked(0.5);
        for (int k = 0; k < values.Length; k++) gradientFactors[k] = T.Abs(values[k]) <= T.One ? T.One : T.Zero;
        if (!training)
        {
            for (int k = 0; k < values.Length; k++) values[k] = T.Abs(values[k]) > half ? T.CopySign(T.One, values[k]) : T.Zero;
            return;
        }
        // One draw of the tensor's shape, as forward's RandLike makes: the same values from the same generator state.
        using var noise = TrainingRandom.Rand(new long[] { rows, width }, dtype, device);
        var u = TensorSpans.Of<T>(noise);
        for (int k = 0; k < values.Length; k++)
        {
            T a = T.Clamp(values[k], -T.One, T.One);
            values[k] = u[k] < T.Abs(a) ? T.CopySign(T.One, a) : T.Zero;
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
