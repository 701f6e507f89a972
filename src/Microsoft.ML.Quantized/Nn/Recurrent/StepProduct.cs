using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized;

/// <summary>
/// The recurrent matrix product of every step of a sequence function, <c>C = A B</c> with <c>A</c> [rows, K] a step's
/// state (or gradient) and <c>B</c> [K, N] fixed for the sequence (<c>W_hh^T</c> forward, <c>W_hh</c> backward): with
/// 512-bit vectors in hardware (<see cref="StepProduct.Managed"/>) a register-tiled managed kernel over a copy of <c>B</c> made once per
/// sequence, split by columns over libtorch's intra-op thread count; otherwise libtorch's <c>mm</c>.
/// </summary>
/// <remarks>
/// <para>Why: the per-step product is small (on the quickstart's LSTM [32, 256] x [256, 1024]) and libtorch hands it to its
/// BLAS, whose general matrix product re-packs <c>B</c> on every call; on the 2-core AMD EPYC VM it ran at 13-19 ms per
/// 100 steps, against about 7 ms for this kernel on the same two threads (docs/benchmarks.md, cell loop). The fused LSTM
/// kernel avoids the same cost with oneDNN's packed weights, which a loop with the normalization between product and gates
/// cannot use.</para>
/// <para>The kernel: column blocks of two vectors (32 float or 16 double columns) times blocks of 8 rows, 16 accumulators
/// over the whole depth, so <c>C</c> is written once; the copy of <c>B</c> is padded with zeros to whole column blocks and
/// packed block by block ([blocks, K, 32]), so a block's loads run through memory in order (row-major <c>B</c>, with
/// rows 4 KB apart, read at less than half the speed);
/// rows beyond the last read the last row again, and each tile is copied out through a small buffer, the rows and columns that
/// exist.
/// The sums run in another order than libtorch's, so the two paths agree to rounding, not bit for bit.</para>
/// </remarks>
internal sealed class StepProduct<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private const int TileRows = 8;
    private static int BlockWidth => 2 * Vector512<T>.Count;

    private readonly Tensor b;
    private readonly Tensor? packed;
    private readonly int depth;
    private readonly int columns;
    private readonly int blocks;
    private readonly int workers;

    /// <summary>
    /// For products with <paramref name="right"/> [K, N] (any strides; a view such as <c>W.t()</c> is fine), which must not
    /// change while this instance is in use. Allocates the padded copy in the caller's dispose scope.
    /// </summary>
    public StepProduct(Tensor right)
    {
        b = right;
        depth = (int)right.shape[0];
        columns = (int)right.shape[1];
        if (!StepProduct.Managed) return;
        blocks = (columns + BlockWidth - 1) / BlockWidth;
        using (var scope = NewDisposeScope())
        {
            var copy = zeros(depth, blocks * BlockWidth, dtype: right.dtype, device: right.device);
            copy.narrow(1, 0, columns).copy_(right);
            packed = copy.view(depth, blocks, BlockWidth).permute(1, 0, 2).contiguous().MoveToOuterDisposeScope();
        }
        workers = Math.Max(1, Math.Min(torch.get_num_threads(), blocks));
    }

    /// <summary>
    /// Writes <c>A B</c> [rows, N] to <paramref name="destination"/>, with <c>A</c> step <paramref name="step"/> of
    /// <paramref name="steps"/> [T, rows, K] (contiguous).
    /// </summary>
    public void Multiply(Tensor steps, int step, Span<T> destination)
    {
        int rows = (int)steps.shape[1], size = rows * depth;
        if (packed is null)
        {
            using var left = steps[step];
            using var product = left.mm(b);
            TensorSpans.Of<T>(product).CopyTo(destination);
            return;
        }
        Multiply(TensorSpans.Of<T>(steps).Slice(step * size, size), rows, TensorSpans.Of<T>(packed), destination);
    }

    private unsafe void Multiply(ReadOnlySpan<T> left, int rows, ReadOnlySpan<T> right, Span<T> destination)
    {
        // Below about a quarter of a million multiply-adds (a few microseconds) a second thread costs more than it saves.
        int parts = (long)rows * depth * columns < (1 << 18) ? 1 : workers;
        fixed (T* a = left, r = right, c = destination)
        {
            if (parts == 1)
            {
                Tiles(a, rows, r, c, 0, blocks);
                return;
            }
            nint pa = (nint)a, pr = (nint)r, pc = (nint)c;
            Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = parts }, part =>
            {
                int first = blocks * part / parts, last = blocks * (part + 1) / parts;
                Tiles((T*)pa, rows, (T*)pr, (T*)pc, first, last - first);
            });
        }
    }

    /// <summary>Column blocks <paramref name="firstBlock"/> .. + <paramref name="blockCount"/> of <c>C = A B</c>, every row.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private unsafe void Tiles(T* a, int rows, T* right, T* c, int firstBlock, int blockCount)
    {
        int width = Vector512<T>.Count, k = depth;
        T* tile = stackalloc T[TileRows * BlockWidth];
        for (int block = firstBlock; block < firstBlock + blockCount; block++)
        {
            int column = block * BlockWidth;
            for (int m = 0; m < rows; m += TileRows)
            {
                T* a0 = a + m * k, a1 = a + Math.Min(m + 1, rows - 1) * k, a2 = a + Math.Min(m + 2, rows - 1) * k, a3 = a + Math.Min(m + 3, rows - 1) * k;
                T* a4 = a + Math.Min(m + 4, rows - 1) * k, a5 = a + Math.Min(m + 5, rows - 1) * k, a6 = a + Math.Min(m + 6, rows - 1) * k, a7 = a + Math.Min(m + 7, rows - 1) * k;
                Vector512<T> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default, c30 = default, c31 = default;
                Vector512<T> c40 = default, c41 = default, c50 = default, c51 = default, c60 = default, c61 = default, c70 = default, c71 = default;
                T* bp = right + (long)block * k * BlockWidth;
                for (int i = 0; i < k; i++, bp += BlockWidth)
                {
                    var v0 = Vector512.Load(bp);
                    var v1 = Vector512.Load(bp + width);
                    var x = Vector512.Create(a0[i]); c00 = Fma(x, v0, c00); c01 = Fma(x, v1, c01);
                    x = Vector512.Create(a1[i]); c10 = Fma(x, v0, c10); c11 = Fma(x, v1, c11);
                    x = Vector512.Create(a2[i]); c20 = Fma(x, v0, c20); c21 = Fma(x, v1, c21);
                    x = Vector512.Create(a3[i]); c30 = Fma(x, v0, c30); c31 = Fma(x, v1, c31);
                    x = Vector512.Create(a4[i]); c40 = Fma(x, v0, c40); c41 = Fma(x, v1, c41);
                    x = Vector512.Create(a5[i]); c50 = Fma(x, v0, c50); c51 = Fma(x, v1, c51);
                    x = Vector512.Create(a6[i]); c60 = Fma(x, v0, c60); c61 = Fma(x, v1, c61);
                    x = Vector512.Create(a7[i]); c70 = Fma(x, v0, c70); c71 = Fma(x, v1, c71);
                }
                // Through a buffer, with no call between the loop and the stores: the 16 accumulators stay in registers (a call
                // taking them as arguments made the JIT keep them in memory, written back on every step of the loop).
                c00.Store(tile); c01.Store(tile + width); c10.Store(tile + 2 * width); c11.Store(tile + 3 * width);
                c20.Store(tile + 4 * width); c21.Store(tile + 5 * width); c30.Store(tile + 6 * width); c31.Store(tile + 7 * width);
                c40.Store(tile + 8 * width); c41.Store(tile + 9 * width); c50.Store(tile + 10 * width); c51.Store(tile + 11 * width);
                c60.Store(tile + 12 * width); c61.Store(tile + 13 * width); c70.Store(tile + 14 * width); c71.Store(tile + 15 * width);
                CopyTile(tile, c, rows, m, column);
            }
        }
    }

    /// <summary>A tile [8, 2 vectors] into rows <paramref name="firstRow"/>.. of <c>C</c> [rows, N], the rows and columns that exist.</summary>
    private unsafe void CopyTile(T* tile, T* c, int rows, int firstRow, int column)
    {
        int count = Math.Min(BlockWidth, columns - column);
        for (int r = firstRow; r < Math.Min(firstRow + TileRows, rows); r++)
            new ReadOnlySpan<T>(tile + (r - firstRow) * BlockWidth, count).CopyTo(new Span<T>(c + (long)r * columns + column, count));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<T> Fma(Vector512<T> x, Vector512<T> y, Vector512<T> sum)
    {
#if NET9_0_OR_GREATER
        if (typeof(T) == typeof(float)) return Vector512.FusedMultiplyAdd(x.AsSingle(), y.AsSingle(), sum.AsSingle()).As<float, T>();
        if (typeof(T) == typeof(double)) return Vector512.FusedMultiplyAdd(x.AsDouble(), y.AsDouble(), sum.AsDouble()).As<double, T>();
#endif
        return x * y + sum;
    }
}

/// <summary>Which kernel <see cref="StepProduct{T}"/> runs, for both element types.</summary>
internal static class StepProduct
{
    /// <summary>
    /// True (the default) where 512-bit vectors run in hardware, so the managed kernel runs; otherwise libtorch's <c>mm</c>.
    /// Tests set it to run either path on any machine (the managed kernel is correct everywhere, fast only there).
    /// </summary>
    internal static bool Managed { get; set; } = Vector512.IsHardwareAccelerated;
}
