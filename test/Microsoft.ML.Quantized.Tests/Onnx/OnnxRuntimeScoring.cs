using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Microsoft.ML.Quantized.Tests;

/// <summary>Runs an exported model in ONNX Runtime (loading it runs ORT's own model checks) on padded batches.</summary>
internal static class OnnxRuntimeScoring
{
    /// <summary>The exported bytes of <paramref name="model"/> in <paramref name="format"/>.</summary>
    public static byte[] Export(PackedModel model, OnnxWeightFormat format, bool logProbabilities = false)
    {
        using var stream = new MemoryStream();
        model.ExportToOnnx(stream, new OnnxExportOptions { WeightFormat = format, LogProbabilities = logProbabilities });
        return stream.ToArray();
    }

    /// <summary>Classifier probabilities [rows][classes] of token sequences padded to the longest, with their lengths.</summary>
    public static float[][] ClassifyTokens(byte[] onnx, IReadOnlyList<int[]> sequences, string input = "tokens")
    {
        int time = sequences.Max(s => s.Length);
        var tokens = new DenseTensor<long>([sequences.Count, time]);
        for (int b = 0; b < sequences.Count; b++)
            for (int t = 0; t < sequences[b].Length; t++) tokens[b, t] = sequences[b][t];
        return Classify(onnx, NamedOnnxValue.CreateFromTensor(input, tokens), sequences.Select(s => (long)s.Length).ToArray());
    }

    /// <summary>Classifier probabilities of frame sequences (flat frames of <paramref name="frameSize"/>) padded with zeros.</summary>
    public static float[][] ClassifyFrames(byte[] onnx, IReadOnlyList<float[]> sequences, int frameSize)
    {
        int time = sequences.Max(s => s.Length / frameSize);
        var frames = new DenseTensor<float>([sequences.Count, time, frameSize]);
        for (int b = 0; b < sequences.Count; b++)
            for (int i = 0; i < sequences[b].Length; i++) frames[b, i / frameSize, i % frameSize] = sequences[b][i];
        return Classify(onnx, NamedOnnxValue.CreateFromTensor("frames", frames), sequences.Select(s => (long)(s.Length / frameSize)).ToArray());
    }

    /// <summary>The language model's only output [batch][time][vocabulary] for equal-length rows of ids.</summary>
    public static (string Name, float[,,] Values) LanguageModel(byte[] onnx, int[][] rows)
    {
        var tokens = new DenseTensor<long>([rows.Length, rows[0].Length]);
        for (int b = 0; b < rows.Length; b++)
            for (int t = 0; t < rows[b].Length; t++) tokens[b, t] = rows[b][t];
        using var session = new InferenceSession(onnx);
        using var results = session.Run([NamedOnnxValue.CreateFromTensor("tokens", tokens)]);
        var output = results.Single();
        var tensor = output.AsTensor<float>();
        var values = new float[tensor.Dimensions[0], tensor.Dimensions[1], tensor.Dimensions[2]];
        for (int b = 0; b < values.GetLength(0); b++)
            for (int t = 0; t < values.GetLength(1); t++)
                for (int v = 0; v < values.GetLength(2); v++) values[b, t, v] = tensor[b, t, v];
        return (output.Name, values);
    }

    private static float[][] Classify(byte[] onnx, NamedOnnxValue input, long[] lengths)
    {
        using var session = new InferenceSession(onnx);
        using var results = session.Run([input, NamedOnnxValue.CreateFromTensor("lengths", new DenseTensor<long>(lengths, [lengths.Length]))]);
        var p = results.Single(r => r.Name == "probabilities").AsTensor<float>();
        return Enumerable.Range(0, lengths.Length).Select(b => Enumerable.Range(0, p.Dimensions[1]).Select(c => p[b, c]).ToArray()).ToArray();
    }
}
