using System.Numerics;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized;

/// <summary>
/// The recurrent weight's gradient in a sequence function's backward pass, one product over the whole sequence:
/// <c>dW_hh = dR^T H</c> with <c>dR</c> [T B, features] the gradients of the recurrent terms and <c>H</c> [T B, hidden] the
/// states they multiplied. With 512-bit vectors in hardware (<see cref="StepProduct.Managed"/>) <see cref="TileKernel{T}"/>
/// over <c>dR</c> packed into transposed panels and <c>H</c> packed by column blocks, in depth blocks of
/// <see cref="DepthBlock"/> rows, the tiles of <c>dW_hh</c> split over libtorch's intra-op thread count; otherwise
/// libtorch's <c>mm</c>.
/// </summary>
/// <remarks>
/// On the quickstart's LSTM (T B = 3,200, [1024, 256]) libtorch's product took about 10 ms on the 2-core AMD EPYC VM;
/// reading <c>dR</c> transposed in place ran slower still (its rows 4 KB apart) and summed 3,200 terms in one sequence, 7x
/// libtorch's float32 error; packed and in depth blocks neither happens (docs/benchmarks.md, cell loop).
/// </remarks>
internal static class SequenceWeightGradient
{
    /// <summary>Depth rows per block: each block's sums are added to the result, so no float32 sum runs over more terms.</summary>
    private const int DepthBlock = 256;

    /// <summary>
    /// <c>gradients^T inputs</c> [features, hidden] from the first <paramref name="depth"/> rows of
    /// <paramref name="gradients"/> [.., features] and <paramref name="inputs"/> [.., hidden] (both contiguous, read as
    /// [depth, width] from their first element), in the caller's dispose scope.
    /// </summary>
    public static Tensor Compute<T>(Tensor gradients, Tensor inputs, int depth) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int rows = (int)gradients.shape[^1], columns = (int)inputs.shape[^1];
        if (!StepProduct.Managed)
            return gradients.view(-1, rows).narrow(0, 0, depth).t().mm(inputs.view(-1, columns).narrow(0, 0, depth));
        int tiles = (rows + TileKernel<T>.TileRows - 1) / TileKernel<T>.TileRows, blocks = TileKernel<T>.Blocks(columns), width = TileKernel<T>.BlockWidth;
        var (dtype, device) = (gradients.dtype, gradients.device);
        using var panels = empty((long)tiles * depth * TileKernel<T>.TileRows, dtype: dtype, device: device);
        using var packed = empty((long)blocks * depth * width, dtype: dtype, device: device);
        TileKernel<T>.PackPanels(TensorSpans.Of<T>(gradients)[..(depth * rows)], depth, rows, TensorSpans.Of<T>(panels));
        TileKernel<T>.Pack(TensorSpans.Of<T>(inputs)[..(depth * columns)], columns, depth, columns, TensorSpans.Of<T>(packed));
        var result = empty(rows, columns, dtype: dtype, device: device);
        Multiply<T>(TensorSpans.Of<T>(panels), TensorSpans.Of<T>(packed), TensorSpans.Of<T>(result), rows, columns, depth, tiles, blocks);
        return result;
    }

    private static unsafe void Multiply<T>(Span<T> panels, Span<T> packed, Span<T> result, int rows, int columns, int depth, int tiles, int blocks)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int parts = Math.Max(1, Math.Min(torch.get_num_threads(), tiles)), tileRows = TileKernel<T>.TileRows, width = TileKernel<T>.BlockWidth;
        fixed (T* pl = panels, pr = packed, pc = result)
        {
            nint left = (nint)pl, right = (nint)pr, c = (nint)pc;
            IntraOpThreads.For(parts, parts, part =>
            {
                int firstTile = tiles * part / parts, lastTile = tiles * (part + 1) / parts;
                int firstRow = firstTile * tileRows, partRows = Math.Min(rows, lastTile * tileRows) - firstRow;
                for (int k = 0; k < depth; k += DepthBlock)
                {
                    TileKernel<T>.Tiles((T*)left + ((long)firstTile * depth + k) * tileRows, (nint)depth * tileRows, 1, tileRows, partRows,
                        Math.Min(DepthBlock, depth - k), (T*)right + (long)k * width, (nint)depth * width, (T*)c + (long)firstRow * columns, columns,
                        0, blocks, accumulate: k > 0);
                }
            });
        }
    }
}
