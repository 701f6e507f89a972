using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Microsoft.ML.Quantized;

/// <summary>
/// The register-tiled matrix product under <see cref="StepProduct{T}"/> and <see cref="SequenceWeightGradient"/>:
/// <c>C = A B</c> (or <c>C += A B</c>) for column blocks of two 512-bit vectors (32 float or 16 double columns) times tiles of 8
/// rows, 16 accumulators over the whole depth, so each tile of <c>C</c> is written once. <c>B</c> comes packed block by block
/// (<see cref="Pack"/>: [blocks, depth, 32] padded with zeros) so a block's loads run through memory in order; <c>A</c> is read
/// through strides, either row-major in place or from panels of 8 rows packed depth-major (<see cref="PackPanels"/>).
/// </summary>
/// <remarks>
/// Rows beyond the last of a tile read the tile's last row again, and each tile is copied out (or added) through a small
/// buffer, the rows and columns that exist: storing the accumulators straight from the loop, with no call between, keeps
/// them in registers (a call taking them as arguments made the JIT keep them in memory, written back on every step of the
/// loop). The sums run in another order than libtorch's, so results agree with it to rounding, not bit for bit.
/// </remarks>
internal static class TileKernel<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    /// <summary>Rows of a tile.</summary>
    public const int TileRows = 8;

    /// <summary>Columns of a block: two vectors.</summary>
    public static int BlockWidth => 2 * Vector512<T>.Count;

    /// <summary>How many column blocks cover <paramref name="columns"/> columns.</summary>
    public static int Blocks(int columns) => (columns + BlockWidth - 1) / BlockWidth;

    /// <summary>
    /// <paramref name="source"/> [depth, columns] (row-major, rows <paramref name="sourceStride"/> apart) packed into
    /// <paramref name="packed"/> [blocks, depth, <see cref="BlockWidth"/>], the columns past the last zero.
    /// </summary>
    public static void Pack(ReadOnlySpan<T> source, int sourceStride, int depth, int columns, Span<T> packed)
    {
        int width = BlockWidth, blocks = Blocks(columns);
        for (int block = 0; block < blocks; block++)
        {
            int column = block * width, count = Math.Min(width, columns - column);
            for (int k = 0; k < depth; k++)
            {
                var target = packed.Slice((block * depth + k) * width, width);
                source.Slice(k * sourceStride + column, count).CopyTo(target);
                if (count < width) target[count..].Clear();
            }
        }
    }

    /// <summary>
    /// The transpose of <paramref name="source"/> [depth, rows] (row-major) packed into panels of <see cref="TileRows"/> rows,
    /// <paramref name="panels"/> [ceil(rows / 8), depth, 8], the rows past the last zero: the left operand of <c>C = S^T B</c>
    /// read with <see cref="Tiles"/>' strides (1, 8, depth * 8).
    /// </summary>
    public static unsafe void PackPanels(ReadOnlySpan<T> source, int depth, int rows, Span<T> panels)
    {
        // Depth in chunks: a chunk's source rows stay in cache while each panel gets a contiguous run of it.
        const int Chunk = 32;
        int tiles = (rows + TileRows - 1) / TileRows, whole = rows / TileRows;
        fixed (T* s = source, p = panels)
        {
            for (int first = 0; first < depth; first += Chunk)
            {
                int last = Math.Min(depth, first + Chunk);
                for (int tile = 0; tile < tiles; tile++)
                {
                    T* target = p + ((long)tile * depth + first) * TileRows, column = s + (long)first * rows + tile * TileRows;
                    int count = Math.Min(TileRows, rows - tile * TileRows);
                    for (int k = first; k < last; k++, target += TileRows, column += rows)
                    {
                        if (tile < whole) CopyRow(column, target);
                        else for (int j = 0; j < TileRows; j++) target[j] = j < count ? column[j] : T.Zero;
                    }
                }
            }
        }
    }

    /// <summary>One panel row: <see cref="TileRows"/> values, one 256-bit (float) or 512-bit (double) vector.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void CopyRow(T* source, T* target)
    {
        if (typeof(T) == typeof(float)) Vector256.Store(Vector256.Load((float*)source), (float*)target);
        else if (typeof(T) == typeof(double)) Vector512.Store(Vector512.Load((double*)source), (double*)target);
        else for (int j = 0; j < TileRows; j++) target[j] = source[j];
    }

    /// <summary>
    /// Column blocks <paramref name="firstBlock"/> .. + <paramref name="blockCount"/> of <c>C = A B</c> over
    /// <paramref name="depth"/> terms, every one of the <paramref name="rows"/> rows; with <paramref name="accumulate"/> added to
    /// <c>C</c> instead. <c>A</c>'s element (row <c>8 t + j</c>, depth <c>i</c>) is at <c>a + t tileStride + j rowStride + i
    /// depthStride</c>; block <c>b</c> of the packed <c>B</c> starts at <c>right + b blockStride</c>, its depth rows
    /// <see cref="BlockWidth"/> apart; <c>C</c> is row-major [rows, columns].
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static unsafe void Tiles(T* a, nint tileStride, nint rowStride, nint depthStride, int rows, int depth,
        T* right, nint blockStride, T* c, int columns, int firstBlock, int blockCount, bool accumulate)
    {
        int width = Vector512<T>.Count, blockWidth = BlockWidth;
        T* tile = stackalloc T[TileRows * 2 * Vector512<T>.Count];
        for (int block = firstBlock; block < firstBlock + blockCount; block++)
        {
            int column = block * blockWidth;
            for (int m = 0; m < rows; m += TileRows)
            {
                T* at = a + m / TileRows * tileStride;
                int last = Math.Min(TileRows, rows - m) - 1;
                T* a0 = at, a1 = at + Math.Min(1, last) * rowStride, a2 = at + Math.Min(2, last) * rowStride, a3 = at + Math.Min(3, last) * rowStride;
                T* a4 = at + Math.Min(4, last) * rowStride, a5 = at + Math.Min(5, last) * rowStride, a6 = at + Math.Min(6, last) * rowStride, a7 = at + Math.Min(7, last) * rowStride;
                Vector512<T> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default, c30 = default, c31 = default;
                Vector512<T> c40 = default, c41 = default, c50 = default, c51 = default, c60 = default, c61 = default, c70 = default, c71 = default;
                T* bp = right + block * blockStride;
                nint o = 0;
                for (int i = 0; i < depth; i++, bp += blockWidth, o += depthStride)
                {
                    var v0 = Vector512.Load(bp);
                    var v1 = Vector512.Load(bp + width);
                    var x = Vector512.Create(a0[o]); c00 = Fma(x, v0, c00); c01 = Fma(x, v1, c01);
                    x = Vector512.Create(a1[o]); c10 = Fma(x, v0, c10); c11 = Fma(x, v1, c11);
                    x = Vector512.Create(a2[o]); c20 = Fma(x, v0, c20); c21 = Fma(x, v1, c21);
                    x = Vector512.Create(a3[o]); c30 = Fma(x, v0, c30); c31 = Fma(x, v1, c31);
                    x = Vector512.Create(a4[o]); c40 = Fma(x, v0, c40); c41 = Fma(x, v1, c41);
                    x = Vector512.Create(a5[o]); c50 = Fma(x, v0, c50); c51 = Fma(x, v1, c51);
                    x = Vector512.Create(a6[o]); c60 = Fma(x, v0, c60); c61 = Fma(x, v1, c61);
                    x = Vector512.Create(a7[o]); c70 = Fma(x, v0, c70); c71 = Fma(x, v1, c71);
                }
                c00.Store(tile); c01.Store(tile + width); c10.Store(tile + 2 * width); c11.Store(tile + 3 * width);
                c20.Store(tile + 4 * width); c21.Store(tile + 5 * width); c30.Store(tile + 6 * width); c31.Store(tile + 7 * width);
                c40.Store(tile + 8 * width); c41.Store(tile + 9 * width); c50.Store(tile + 10 * width); c51.Store(tile + 11 * width);
                c60.Store(tile + 12 * width); c61.Store(tile + 13 * width); c70.Store(tile + 14 * width); c71.Store(tile + 15 * width);
                CopyTile(tile, c, rows, columns, m, column, accumulate);
            }
        }
    }

    /// <summary>A tile [8, 2 vectors] into (or added to) rows <paramref name="firstRow"/>.. of <c>C</c> [rows, columns], the rows and columns that exist.</summary>
    private static unsafe void CopyTile(T* tile, T* c, int rows, int columns, int firstRow, int column, bool accumulate)
    {
        int count = Math.Min(BlockWidth, columns - column);
        for (int r = firstRow; r < Math.Min(firstRow + TileRows, rows); r++)
        {
            var source = new ReadOnlySpan<T>(tile + (r - firstRow) * BlockWidth, count);
            var target = new Span<T>(c + (long)r * columns + column, count);
            if (accumulate) System.Numerics.Tensors.TensorPrimitives.Add(source, target, target);
            else source.CopyTo(target);
        }
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
