using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized;

/// <summary>
/// <see cref="QuantizerKind.AlternatingMultiBit"/> (Xu et al., "Alternating Multi-bit Quantization for Recurrent
/// Neural Networks", ICLR 2018): <c>w ~ sum_i alpha_i * b_i</c> with k binary bases <c>b_i</c> in {-1, +1} and
/// real coefficients, per row (the registry's and the options' default, as the paper quantizes a matrix row by row,
/// Figure 3) or per tensor. Greedy start (<c>b_i = sign(r)</c>, <c>alpha_i = mean |r|</c> on the
/// running residual r), then alternating cycles: with B fixed, alpha solves the k x k least-squares normal equations
/// <c>(B B^T) alpha = B w</c> (pseudo-inverse, in float64); with alpha fixed, every weight takes the nearest of the
/// 2^k sums, found by binary search over the sorted codebook. Each half-step cannot raise the squared error, so the
/// result is never worse than greedy. The step-size multiplier scales every alpha. Straight-through gradient clipped
/// to max |w| of the group, which is the identity. Stored as <see cref="CodeLayout.BinaryBases"/> (bit i = 1 means
/// +alpha_i) with k scales per group.
/// </summary>
internal sealed class AlternatingMultiBitQuantizer : Quantizer
{
    /// <summary>Default alternating cycles after the greedy start (the paper finds two enough).</summary>
    public const int DefaultIterations = 2;

    private readonly bool _perRow;
    private readonly double _multiplier;

    /// <summary>Creates the quantizer.</summary>
    /// <param name="bits">Number of binary bases k, 1-4.</param>
    /// <param name="perRow">Coefficients per row (output channel) instead of per tensor.</param>
    /// <param name="stepSizeMultiplier">Multiplies every coefficient (1 = unchanged).</param>
    /// <param name="iterations">Alternating cycles after the greedy start; 0 keeps the greedy solution.</param>
    public AlternatingMultiBitQuantizer(int bits = 2, bool perRow = false, double stepSizeMultiplier = 1.0, int iterations = DefaultIterations)
        : base(nameof(AlternatingMultiBitQuantizer))
    {
        if (bits < 1 || bits > 4)
            throw new ArgumentOutOfRangeException(nameof(bits), bits, "Alternating multi-bit quantization takes 1-4 binary bases.");
        if (iterations < 0)
            throw new ArgumentOutOfRangeException(nameof(iterations), iterations, "Alternating cycles must be 0 or more.");
        Bits = bits;
        Iterations = iterations;
        _perRow = perRow;
        _multiplier = stepSizeMultiplier;
    }

    /// <summary>Alternating cycles after the greedy start.</summary>
    public int Iterations { get; }

    /// <inheritdoc />
    public override string RegistryName => QuantizerRegistry.NameOf(new QuantizerOptions
    {
        Kind = QuantizerKind.AlternatingMultiBit, Bits = Bits, PerRowScale = _perRow, StepSizeMultiplier = _multiplier,
    });

    /// <inheritdoc />
    public override int Bits { get; }

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        // The alternating least-squares fit depends only on the values: reused while they do not change (evaluation).
        var q = Reused(input, w =>
        {
            var (codes, alphas) = Quantize(w);
            return Codebook(alphas).gather(1, codes).reshape(w.shape);
        });
        return QuantizerMath.StraightThrough(q, input).MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    public override QuantizedWeights Encode(Tensor weight)
    {
        using var scope = NewDisposeScope();
        var w = QuantizerMath.CheckEncodable(weight, RegistryName);
        var (codes, alphas) = Quantize(w);
        return QuantizerMath.ToWeights(CodeLayout.BinaryBases, Bits, w, _perRow, codes, alphas);
    }

    /// <summary>Codes [groups, n] (int64, bit i = 1 means +alpha_i) and coefficients [groups, k].</summary>
    private (Tensor Codes, Tensor Alphas) Quantize(Tensor w)
    {
        var g = QuantizerMath.Grouped(w, _perRow);
        int k = Bits;

        // Greedy: b_i = sign(residual), alpha_i = mean |residual|.
        var residual = g;
        var alphaList = new Tensor[k];
        var codes = torch.zeros(g.shape, ScalarType.Int64, g.device);
        for (int i = 0; i < k; i++)
        {
            var a = residual.abs().mean(new long[] { 1 }, keepdim: true);
            var positive = residual >= Scalars.Zero;
            var b = positive.to_type(g.dtype).mul(Scalars.Two).sub(Scalars.One);
            residual = residual - a * b;
            alphaList[i] = a;
            using var bit = (1L << i).ToScalar();
            codes = codes.add(positive.to_type(ScalarType.Int64).mul(bit), Scalars.One);
        }
        var alphas = torch.cat(alphaList, 1);

        var planes = BitPlanes(k, ScalarType.Float64, g.device); // [2^k, k] of +-1
        for (int t = 0; t < Iterations; t++)
        {
            // Fix B, solve alpha: (B B^T) alpha = B w per group. Both sides depend on B only through how many weights,
            // and which weight sum, each of the 2^k codes has: B B^T = P^T diag(count) P and B w = P^T sum, with P the
            // code-to-signs table. Solved in float64 with the pseudo-inverse, which copes with a basis that repeats.
            var g64 = g.to_type(ScalarType.Float64);
            var count = torch.zeros(g.shape[0], 1L << k, ScalarType.Float64, g.device).scatter_add_(1, codes, torch.ones_like(g64));
            var sum = torch.zeros(g.shape[0], 1L << k, ScalarType.Float64, g.device).scatter_add_(1, codes, g64);
            var gram = planes.t().unsqueeze(0).matmul(count.unsqueeze(2) * planes.unsqueeze(0)); // [G, k, k]
            var rhs = sum.matmul(planes).unsqueeze(2);                                            // [G, k, 1]
            alphas = torch.linalg.pinv(gram).matmul(rhs).squeeze(2).to_type(g.dtype);

            // Fix alpha, pick for every weight the nearest of the 2^k sums (binary search on the sorted codebook).
            codes = Nearest(g, Codebook(alphas));
        }
        return (codes, QuantizerMath.TimesMultiplier(alphas, _multiplier));
    }

    /// <summary>Index of the nearest codebook entry for every value of <paramref name="g"/> [groups, n].</summary>
    private static Tensor Nearest(Tensor g, Tensor codebook)
    {
        var (sorted, order) = codebook.sort(1);
        var boundaries = sorted.narrow(1, 1, sorted.shape[1] - 1).add(sorted.narrow(1, 0, sorted.shape[1] - 1), Scalars.One).mul(Scalars.Half).contiguous();
        var position = torch.searchsorted(boundaries, g.contiguous());
        return order.gather(1, position);
    }

    /// <summary>
    /// The 2^k values per group, [groups, 2^k]: entry c = sum over i (in order i = 0..k-1, starting from 0) of
    /// +alpha_i where bit i of c is set, else -alpha_i; the same float32 additions as <see cref="QuantizedWeights.Decode"/>.
    /// </summary>
    private Tensor Codebook(Tensor alphas)
    {
        var planes = BitPlanes(Bits, alphas.dtype, alphas.device); // [2^k, k]
        var book = torch.zeros(alphas.shape[0], planes.shape[0], alphas.dtype, alphas.device);
        for (int i = 0; i < Bits; i++)
            book = book.add(alphas.narrow(1, i, 1) * planes.select(1, i).unsqueeze(0), Scalars.One);
        return book;
    }

    /// <summary>[2^k, k]: entry (c, i) is +1 when bit i of c is set, else -1.</summary>
    private static Tensor BitPlanes(int k, ScalarType dtype, Device device)
    {
        var values = new float[(1 << k) * k];
        for (int c = 0; c < 1 << k; c++)
            for (int i = 0; i < k; i++)
                values[c * k + i] = ((c >> i) & 1) == 1 ? 1f : -1f;
        return torch.tensor(values, new long[] { 1 << k, k }).to(dtype, device);
    }
}
