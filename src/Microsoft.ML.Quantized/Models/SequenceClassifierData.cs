using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized;

/// <summary>
/// Checked sequences (token ids or float frames) with optional labels, cut into padded time-major batches.
/// Checks run once, up front, and name the argument, the example and the fix.
/// </summary>
internal sealed class SequenceClassifierData
{
    private readonly int[][]? _tokens;
    private readonly float[][]? _frames;
    private readonly int _frameSize;

    private SequenceClassifierData(int[][]? tokens, float[][]? frames, int frameSize, int[]? labels)
    {
        _tokens = tokens;
        _frames = frames;
        _frameSize = frameSize;
        Labels = labels;
        Count = tokens?.Length ?? frames!.Length;
    }

    public int Count { get; }

    public int[]? Labels { get; }

    /// <summary>Token sequences: non-empty, every id in [0, vocabularySize) (vocabularySize 0 = not checked here).</summary>
    public static SequenceClassifierData FromTokens(IReadOnlyList<int[]> sequences, int[]? labels, int vocabularySize, int classCount, string name, string labelName = "labels")
    {
        ArgumentNullException.ThrowIfNull(sequences, name);
        var copy = new int[sequences.Count][];
        for (int i = 0; i < copy.Length; i++)
        {
            var s = sequences[i] ?? throw new ArgumentNullException(name, $"{name}[{i}] is null; every example needs a sequence of at least one token.");
            if (s.Length == 0) throw new ArgumentException($"{name}[{i}] is empty; every example needs at least one token (drop it, or encode it as a single unknown/padding token).", name);
            if (vocabularySize > 0)
            {
                for (int t = 0; t < s.Length; t++)
                {
                    if ((uint)s[t] >= (uint)vocabularySize)
                        throw new ArgumentOutOfRangeException(name, s[t], $"{name}[{i}][{t}] = {s[t]} is outside the vocabulary [0, {vocabularySize}); raise SequenceClassifierOptions.VocabularySize or map the token to an unknown id.");
                }
            }
            copy[i] = s;
        }
        CheckLabels(labels, copy.Length, classCount, name, labelName);
        return new SequenceClassifierData(copy, null, 0, labels);
    }

    /// <summary>Float sequences: non-empty, finite, length a multiple of frameSize.</summary>
    public static SequenceClassifierData FromFrames(IReadOnlyList<float[]> sequences, int[]? labels, int frameSize, int classCount, string name, string labelName = "labels")
    {
        ArgumentNullException.ThrowIfNull(sequences, name);
        var copy = new float[sequences.Count][];
        for (int i = 0; i < copy.Length; i++)
        {
            var s = sequences[i] ?? throw new ArgumentNullException(name, $"{name}[{i}] is null; every example needs at least one frame.");
            if (s.Length == 0) throw new ArgumentException($"{name}[{i}] is empty; every example needs at least one frame of {frameSize} value(s).", name);
            if (s.Length % frameSize != 0)
                throw new ArgumentException($"{name}[{i}] has {s.Length} values, not a multiple of SequenceClassifierOptions.FrameSize = {frameSize}; set FrameSize to a divisor of the sequence length (e.g. 28 for 784 MNIST pixels) or pad the sequence.", name);
            for (int t = 0; t < s.Length; t++)
            {
                if (!float.IsFinite(s[t]))
                    throw new ArgumentException($"{name}[{i}][{t}] is {s[t]}; float sequences must be finite (replace NaN/Infinity, e.g. with 0, before training or prediction).", name);
            }
            copy[i] = s;
        }
        CheckLabels(labels, copy.Length, classCount, name, labelName);
        return new SequenceClassifierData(null, copy, frameSize, labels);
    }

    /// <summary>Largest token id + 1 (token data), 0 for frames.</summary>
    public int TokenBound => _tokens is null ? 0 : _tokens.Max(s => s.Max()) + 1;

    /// <summary>Steps of example <paramref name="i"/>.</summary>
    public int Steps(int i) => _tokens is not null ? _tokens[i].Length : _frames![i].Length / _frameSize;

    /// <summary>Steps of the longest sequence.</summary>
    public int LongestSequence => Enumerable.Range(0, Count).Max(Steps);

    /// <summary>
    /// The examples <paramref name="indices"/> as one padded batch: input (tokens [time, batch] int64 padded with
    /// 0, or frames [time, batch, frame] float32 padded with 0), lengths [batch] int64, labels [batch] int64 (or null).
    /// </summary>
    public (Tensor Input, Tensor Lengths, Tensor? Labels) Batch(ReadOnlySpan<int> indices, Device device)
    {
        int batch = indices.Length;
        var lengths = new long[batch];
        int time = 0;
        for (int b = 0; b < batch; b++)
        {
            lengths[b] = Steps(indices[b]);
            time = Math.Max(time, (int)lengths[b]);
        }
        Tensor input;
        if (_tokens is not null)
        {
            var values = new long[(long)time * batch]; // [time, batch]
            for (int b = 0; b < batch; b++)
            {
                var s = _tokens[indices[b]];
                for (int t = 0; t < s.Length; t++) values[(long)t * batch + b] = s[t];
            }
            input = torch.tensor(values, new long[] { time, batch }, device: device);
        }
        else
        {
            var values = new float[(long)time * batch * _frameSize]; // [time, batch, frame]
            for (int b = 0; b < batch; b++)
            {
                var s = _frames![indices[b]];
                int steps = s.Length / _frameSize;
                for (int t = 0; t < steps; t++)
                    Array.Copy(s, t * _frameSize, values, ((long)t * batch + b) * _frameSize, _frameSize);
            }
            input = torch.tensor(values, new long[] { time, batch, _frameSize }, device: device);
        }
        Tensor? labels = null;
        if (Labels is not null)
        {
            var l = new long[batch];
            for (int b = 0; b < batch; b++) l[b] = Labels[indices[b]];
            labels = torch.tensor(l, device: device);
        }
        return (input, torch.tensor(lengths, device: device), labels);
    }

    private static void CheckLabels(int[]? labels, int count, int classCount, string name, string labelName)
    {
        if (labels is null) return;
        if (labels.Length != count)
            throw new ArgumentException($"{name} has {count} sequences but {labelName} has {labels.Length} labels; give exactly one label per sequence.", labelName);
        for (int i = 0; i < labels.Length; i++)
        {
            if ((uint)labels[i] >= (uint)classCount)
                throw new ArgumentOutOfRangeException(labelName, labels[i], $"{labelName}[{i}] = {labels[i]} is outside [0, {classCount}) (SequenceClassifierOptions.ClassCount = {classCount}); labels are class indices from 0, so raise ClassCount or remap the labels.");
        }
    }
}
