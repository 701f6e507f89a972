using BenchmarkDotNet.Attributes;

namespace Microsoft.ML.Quantized.Benchmarks;

/// <summary>
/// The engine's packed mat-vec <c>y = W x</c>, scalar reference kernel vs SIMD kernel (<see cref="ScoringKernels.Reference"/> vs
/// <see cref="ScoringKernels.Simd"/>), on a recurrent matrix of an LSTM's shape, [4H, H], for ternary codes (2-bit signed,
/// one scale per row, as TWN + weight norm packs), binary codes (1 bit, BWN-like) and float32 weights.
/// </summary>
[MemoryDiagnoser]
public class MatVecBenchmarks
{
    private PackedMatrix _matrix = null!;
    private float[] _x = null!;
    private float[] _y = null!;

    /// <summary>Hidden size H.</summary>
    [Params(256, 512)]
    public int Hidden { get; set; }

    /// <summary>How the weights are stored.</summary>
    [Params("ternary", "binary", "float")]
    public string Weights { get; set; } = "ternary";

    [GlobalSetup]
    public void Setup()
    {
        var random = new Random(1);
        int rows = 4 * Hidden, columns = Hidden;
        int count = rows * columns;
        var scales = Enumerable.Range(0, rows).Select(_ => 0.01f + 0.1f * random.NextSingle()).ToArray();
        QuantizedWeights weights = Weights switch
        {
            // Two's complement 2-bit codes: 0, +1 (1), -1 (3), about a third each like TWN's threshold gives.
            "ternary" => new QuantizedWeights(CodeLayout.SignedInteger, 2, rows, columns, true,
                Enumerable.Range(0, count).Select(_ => random.Next(3) switch { 0 => 0, 1 => 1, _ => 3 }).ToArray(), scales),
            "binary" => new QuantizedWeights(CodeLayout.Sign, 1, rows, columns, true, Enumerable.Range(0, count).Select(_ => random.Next(2)).ToArray(), scales),
            "float" => new QuantizedWeights(CodeLayout.Float, 32, rows, columns, false, [], [],
                Enumerable.Range(0, count).Select(_ => random.NextSingle() - 0.5f).ToArray()),
            _ => throw new ArgumentException($"Unknown weights '{Weights}'."),
        };
        _matrix = PackedMatrix.FromQuantizedWeights(weights);
        _x = Enumerable.Range(0, columns).Select(_ => random.NextSingle() * 2 - 1).ToArray();
        _y = new float[rows];
    }

    /// <summary>The scalar reference kernel.</summary>
    [Benchmark(Baseline = true)]
    public void Reference() => ScoringKernels.Reference.MultiplyVector(_matrix, _x, _y);

    /// <summary>The SIMD kernel scoring runs by default.</summary>
    [Benchmark]
    public void Simd() => ScoringKernels.Simd.MultiplyVector(_matrix, _x, _y);
}
