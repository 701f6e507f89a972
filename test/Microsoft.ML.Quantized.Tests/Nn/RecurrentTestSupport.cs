using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized.Tests;

/// <summary>
/// Test-only weight quantizer: sign(w) * mean |w| (deterministic, like BWN) with a straight-through estimator.
/// Counts its forward calls.
/// </summary>
internal sealed class TestSignQuantizer : Quantizer
{
    public TestSignQuantizer() : base(nameof(TestSignQuantizer)) { }

    public int Calls { get; private set; }

    public override string RegistryName => "test-sign";

    public override int Bits => 1;

    public override Tensor forward(Tensor input)
    {
        Calls++;
        using var scope = NewDisposeScope();
        var q = input.sign() * input.abs().mean();
        return (input + (q - input).detach()).MoveToOuterDisposeScope();
    }

    public override QuantizedWeights Encode(Tensor weight) => throw new NotSupportedException();
}

/// <summary>Test-only activation quantizer: rounds to multiples of 1/4 with a straight-through estimator.</summary>
internal sealed class TestQuarterQuantizer : Quantizer
{
    public TestQuarterQuantizer() : base(nameof(TestQuarterQuantizer)) { }

    public override string RegistryName => "test-quarter";

    public override int Bits => 4;

    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var q = (input * 4).round() / 4;
        return (input + (q - input).detach()).MoveToOuterDisposeScope();
    }

    public override QuantizedWeights Encode(Tensor weight) => throw new NotSupportedException();
}

/// <summary>
/// Test-only activation quantizer with a span form and a clip range inside the gates' values: rounds clamp(x, -0.6, 0.6) to
/// multiples of 1/4, straight-through gradient 1 inside [-0.6, 0.6] and 0 outside (the clamp's own gradient), so the sequence
/// functions' straight-through factors of gates and states are not all ones.
/// </summary>
internal sealed class TestClippedQuarterQuantizer : Quantizer, ISpanActivationQuantizer
{
    private const double Limit = 0.6;

    public TestClippedQuarterQuantizer() : base(nameof(TestClippedQuarterQuantizer)) { }

    public override string RegistryName => "test-clipped-quarter";

    public override int Bits => 3;

    public override ISpanActivationQuantizer SpanForm => this;

    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var clipped = input.clamp(-Limit, Limit);
        var q = (clipped * 4).round() / 4;
        return (clipped + (q - clipped).detach()).MoveToOuterDisposeScope();
    }

    public void Quantize<T>(Span<T> values, Span<T> gradientFactors, int rows, int width, ScalarType dtype, Device device)
        where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
    {
        T limit = T.CreateChecked(Limit), four = T.CreateChecked(4);
        for (int k = 0; k < values.Length; k++)
        {
            gradientFactors[k] = values[k] >= -limit && values[k] <= limit ? T.One : T.Zero;
            values[k] = T.Round(T.Clamp(values[k], -limit, limit) * four) / four;
        }
    }

    public override QuantizedWeights Encode(Tensor weight) => throw new NotSupportedException();
}

internal static class RecurrentTestSupport
{
    public static Func<Quantizer> ClippedQuarter => () => new TestClippedQuarterQuantizer();

    public static Func<Quantizer> Float => () => new IdentityQuantizer();

    public static Func<Quantizer> Sign => () => new TestSignQuantizer();

    public static Func<Quantizer> Quarter => () => new TestQuarterQuantizer();

    public static QuantizedRecurrentOptions Options(RecurrentCellKind cell, int hidden, int layers = 1,
        RecurrentNormalization normalization = RecurrentNormalization.None, double dropout = 0)
        => new() { Cell = cell, HiddenSize = hidden, Layers = layers, Normalization = normalization, Dropout = dropout };

    public static void AssertClose(Tensor expected, Tensor actual, double tolerance, string what)
    {
        CollectionAssert.AreEqual(expected.shape, actual.shape, $"{what}: shape");
        using var diff = (expected - actual).abs().max().to(ScalarType.Float64);
        double max = diff.item<double>();
        Assert.IsTrue(max <= tolerance, $"{what}: max |difference| {max:G3} > {tolerance:G3}");
    }

    public static double MaxAbsDifference(Tensor a, Tensor b)
    {
        using var diff = (a - b).abs().max().to(ScalarType.Float64);
        return diff.item<double>();
    }
}
