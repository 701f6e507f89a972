using static TorchSharp.torch;

namespace Microsoft.ML.Quantized;

/// <summary>
/// Truncated-BPTT batching of one token stream (the PTB recipe): the stream is cut into
/// <c>batchSize</c> parallel columns; window i is rows [i*bptt, i*bptt + bptt) as input and the same rows
/// shifted by one as target, time-major [time, batch]. Hidden state carries from one window to the next.
/// </summary>
internal sealed class TokenStreamBatcher : IDisposable
{
    private readonly Tensor _columns; // [length, batch], int64

    public TokenStreamBatcher(ReadOnlySpan<int> tokens, int batchSize, int sequenceLength, Device device)
    {
        if (batchSize < 1) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "Batch size must be at least 1.");
        if (sequenceLength < 1) throw new ArgumentOutOfRangeException(nameof(sequenceLength), sequenceLength, "Sequence length must be at least 1.");
        long length = tokens.Length / batchSize;
        if (length < 2)
            throw new ArgumentException($"The token stream has {tokens.Length} tokens: too few for batch size {batchSize} (each of the {batchSize} columns needs at least 2 tokens).", nameof(tokens));
        var trimmed = new long[length * batchSize];
        for (int i = 0; i < trimmed.Length; i++) trimmed[i] = tokens[i];
        using var flat = tensor(trimmed, new long[] { batchSize, length });
        _columns = flat.t().contiguous().to(device);
        BatchSize = batchSize;
        SequenceLength = sequenceLength;
        Length = length;
    }

    public int BatchSize { get; }

    public int SequenceLength { get; }

    /// <summary>Rows (time steps) per column.</summary>
    public long Length { get; }

    /// <summary>Number of windows in one pass.</summary>
    public int WindowCount => WindowsPerPass(Length * BatchSize, BatchSize, SequenceLength);

    /// <summary>
    /// Windows in one pass over <paramref name="tokenCount"/> tokens cut into <paramref name="batchSize"/> columns (the
    /// remainder dropped) and read <paramref name="sequenceLength"/> targets at a time: the steps of a training epoch.
    /// </summary>
    public static int WindowsPerPass(long tokenCount, int batchSize, int sequenceLength) => (int)((tokenCount / batchSize - 1 + sequenceLength - 1) / sequenceLength);

    /// <summary>Tokens predicted in one pass.</summary>
    public long TargetCount => (Length - 1) * BatchSize;

    /// <summary>Window <paramref name="index"/>: input and target, [time, batch] int64 (the last window may be shorter).</summary>
    public (Tensor Input, Tensor Target) Window(int index)
    {
        long start = (long)index * SequenceLength;
        long steps = Math.Min(SequenceLength, Length - 1 - start);
        if (steps <= 0) throw new ArgumentOutOfRangeException(nameof(index), index, $"Window index must be in [0, {WindowCount}).");
        return (_columns.narrow(0, start, steps), _columns.narrow(0, start + 1, steps));
    }

    public void Dispose() => _columns.Dispose();
}
