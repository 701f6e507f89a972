namespace Microsoft.ML.Quantized.Tests;

/// <summary>A small learnable character corpus: a few sentences repeated in a fixed pseudo-random order.</summary>
internal static class TinyCorpus
{
    private static readonly string[] Sentences =
    {
        "the cat sat on the mat. ", "a dog ran to the park. ", "the bird sang all day. ", "we ate the red apple. ",
    };

    public static string Text(int sentences, int seed = 7)
    {
        var random = new Random(seed);
        var sb = new System.Text.StringBuilder();
        for (int i = 0; i < sentences; i++) sb.Append(Sentences[random.Next(Sentences.Length)]);
        return sb.ToString();
    }

    public static LanguageModelOptions Model(QuantizerKind kind = QuantizerKind.None, RecurrentNormalization normalization = RecurrentNormalization.None,
        RecurrentCellKind cell = RecurrentCellKind.Lstm) => new()
    {
        EmbeddingSize = 16,
        Recurrent = new QuantizedRecurrentOptions
        {
            Cell = cell, HiddenSize = 32, Normalization = normalization,
            WeightQuantizer = new QuantizerOptions { Kind = kind },
        },
    };

    public static TrainingOptions Training(int epochs = 3) => new()
    {
        Epochs = epochs, BatchSize = 8, SequenceLength = 20, Optimizer = OptimizerKind.Adam,
        LearningRate = 1e-2, LearningRateDecay = 1, GradientClipNorm = 1.0, Seed = 3,
    };
}
