using System.Buffers;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized;

/// <summary>
/// The uniform step with the least squared quantization error (<see cref="QuantizerOptions.MinimumErrorStep"/>), per scale
/// group. Each group's magnitudes are sorted once (on the tensor's device) and read back with prefix sums of <c>|x|</c> and
/// <c>x^2</c>; the error at a step <c>s</c> is then exact in <c>O(Qp log n)</c>: the values coded <c>c</c> form one run of
/// the sorted magnitudes and contribute <c>c^2 s^2 n_c - 2 c s sum|x| + sum x^2</c>. (A value exactly halfway between two
/// levels counts as rounded up; the quantizer itself rounds such a tie to even.)
/// </summary>
internal static class MinimumErrorStep
{
    private const int CoarseSteps = 32;
    private const int FineSteps = 512;

    /// <summary>
    /// Steps [groups, 1] for <paramref name="g"/> [groups, values] on its device: the least-error step <c>r * max|x| / Qp</c>,
    /// r searched over k/32 (k = 1..32) and then the best coarse r + j/512 (j = -15..15, within (0, 1]), ties to the larger
    /// step, so never worse than <c>max|x| / Qp</c>; times <paramref name="multiplier"/>; with <paramref name="powerOfTwo"/>
    /// the power of two just below or at-or-above it with the smaller error (ties up). All-zero groups get 1.
    /// </summary>
    public static Tensor Of(Tensor g, int qp, double multiplier, bool powerOfTwo)
    {
        long groups = g.shape[0];
        int n = (int)g.shape[1];
        float[] sorted;
        using (var scope = NewDisposeScope())
        using (no_grad())
        {
            sorted = g.detach().abs().to_type(ScalarType.Float32).sort(dim: 1).Values.cpu().contiguous().data<float>().ToArray();
        }
        var steps = new float[groups];
        var p1 = ArrayPool<double>.Shared.Rent(n + 1);
        var p2 = ArrayPool<double>.Shared.Rent(n + 1);
        try
        {
            for (long i = 0; i < groups; i++)
            {
                var group = new Magnitudes(sorted.AsSpan((int)(i * n), n), p1, p2);
                steps[i] = (float)group.Step(qp, multiplier, powerOfTwo);
            }
        }
        finally
        {
            ArrayPool<double>.Shared.Return(p1);
            ArrayPool<double>.Shared.Return(p2);
        }
        return torch.tensor(steps).reshape(groups, 1).to(g.device);
    }

    /// <summary>One group's sorted magnitudes with prefix sums of |x| and x^2 (doubles).</summary>
    private readonly ref struct Magnitudes
    {
        private readonly ReadOnlySpan<float> _sorted;
        private readonly double[] _sum;
        private readonly double[] _sumOfSquares;

        public Magnitudes(ReadOnlySpan<float> sorted, double[] sum, double[] sumOfSquares)
        {
            _sorted = sorted;
            _sum = sum;
            _sumOfSquares = sumOfSquares;
            sum[0] = 0;
            sumOfSquares[0] = 0;
            for (int i = 0; i < sorted.Length; i++)
            {
                double a = sorted[i];
                sum[i + 1] = sum[i] + a;
                sumOfSquares[i + 1] = sumOfSquares[i] + a * a;
            }
        }

        public double Step(int qp, double multiplier, bool powerOfTwo)
        {
            double max = _sorted.Length == 0 ? 0 : _sorted[^1];
            if (!(max > 0) || !double.IsFinite(max)) return 1;
            double maxStep = max / qp;

            double bestRatio = 1, bestError = SquaredError(maxStep, qp);
            for (int k = CoarseSteps - 1; k >= 1; k--)
                Improve(ref bestRatio, ref bestError, (double)k / CoarseSteps, maxStep, qp);
            double coarse = bestRatio;
            for (int j = CoarseSteps / 2 - 1; j >= -(CoarseSteps / 2 - 1); j--)
            {
                double r = coarse + (double)j / FineSteps;
                if (j != 0 && r > 0 && r <= 1) Improve(ref bestRatio, ref bestError, r, maxStep, qp);
            }

            double step = maxStep * bestRatio * multiplier;
            if (!powerOfTwo) return step;
            double up = Math.Pow(2, Math.Ceiling(Math.Log2(step)));
            if (up < step) up *= 2;
            double down = up / 2;
            return SquaredError(down, qp) < SquaredError(up, qp) ? down : up;
        }

        /// <summary>Takes <paramref name="ratio"/> when its error is strictly smaller (so ties keep the earlier, larger step).</summary>
        private void Improve(ref double bestRatio, ref double bestError, double ratio, double maxStep, int qp)
        {
            double error = SquaredError(maxStep * ratio, qp);
            if (error < bestError)
            {
                bestError = error;
                bestRatio = ratio;
            }
        }

        /// <summary>sum (s * clamp(round(|x| / s), 0, Qp) - |x|)^2 over the group (halfway values rounded up).</summary>
        public double SquaredError(double step, int qp)
        {
            double error = 0;
            int start = 0;
            for (int c = 0; c <= qp && start < _sorted.Length; c++)
            {
                int end = c == qp ? _sorted.Length : LowerBound(start, (c + 0.5) * step);
                double count = end - start, sum = _sum[end] - _sum[start], squares = _sumOfSquares[end] - _sumOfSquares[start];
                double level = c * step;
                error += level * level * count - 2 * level * sum + squares;
                start = end;
            }
            return Math.Max(error, 0);
        }

        /// <summary>The first index at or after <paramref name="from"/> whose magnitude is &gt;= <paramref name="bound"/>.</summary>
        private int LowerBound(int from, double bound)
        {
            int lo = from, hi = _sorted.Length;
            while (lo < hi)
            {
                int mid = (lo + hi) >>> 1;
                if (_sorted[mid] < bound) lo = mid + 1;
                else hi = mid;
            }
            return lo;
        }
    }
}
