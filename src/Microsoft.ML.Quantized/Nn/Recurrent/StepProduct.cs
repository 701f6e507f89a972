using System.Numerics;
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
/// <para>The kernel is <see cref="TileKernel{T}"/> over a copy of <c>B</c> padded with zeros to whole column blocks and
/// packed block by block ([blocks, K, 32]; row-major <c>B</c>, with rows 4 KB apart, read at less than half the speed), each
/// step's <c>A</c> read in place. The sums run in another order than libtorch's, so the two paths agree to rounding, not
/// bit for bit.</para>
/// </remarks>
internal sealed class StepProduct<T> where T : unmanaged, IFloatingPointIeee754<T>
{
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
        blocks = TileKernel<T>.Blocks(columns);
        int blockWidth = TileKernel<T>.BlockWidth;
        using (var scope = NewDisposeScope())
        {
            var copy = zeros(depth, blocks * blockWidth, dtype: right.dtype, device: right.device);
            copy.narrow(1, 0, columns).copy_(right);
            packed = copy.view(depth, blocks, blockWidth).permute(1, 0, 2).contiguous().MoveToOuterDisposeScope();
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
            IntraOpThreads.For(parts, parts, part =>
            {
                int first = blocks * part / parts, last = blocks * (part + 1) / parts;
                Tiles((T*)pa, rows, (T*)pr, (T*)pc, first, last - first);
            });
        }
    }

    /// <summary>Column blocks <paramref name="firstBlock"/> .. + <paramref name="blockCount"/> of <c>C = A B</c>, every row of <c>A</c> read in place.</summary>
    private unsafe void Tiles(T* a, int rows, T* right, T* c, int firstBlock, int blockCount) =>
        TileKernel<T>.Tiles(a, TileKernel<T>.TileRows * depth, depth, 1, rows, depth, right, (nint)depth * TileKernel<T>.BlockWidth, c, columns,
            firstBlock, blockCount, accumulate: false);
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
