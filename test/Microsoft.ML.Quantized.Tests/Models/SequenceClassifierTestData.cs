namespace Microsoft.ML.Quantized.Tests;

/// <summary>Trivially learnable classification tasks and tiny model settings for the sequence-classifier tests.</summary>
internal static class SequenceClassifierTestData
{
    public const int Vocabulary = 8;
    public const int MarkerToken = 3;

    /// <summary>Token sequences of 3..8 ids in [0, 8); label 1 when token 3 appears (about half the examples).</summary>
    public static (int[][] Sequences, int[] Labels) ContainsToken(int count, int seed)
    {
        var random = new Random(seed);
        var sequences = new int[count][];
        var labels = new int[count];
        for (int i = 0; i < count; i++)
        {
            var s = new int[random.Next(3, 9)];
            for (int t = 0; t < s.Length; t++) s[t] = random.Next(Vocabulary);
            sequences[i] = s;
            labels[i] = s.Contains(MarkerToken) ? 1 : 0;
        }
        return (sequences, labels);
    }

    /// <summary>Float sequences of 3..6 frames of 2 values in [-1, 1]; label 1 when the sum of all values is positive.</summary>
    public static (float[][] Sequences, int[] Labels) SignOfSum(int count, int seed, int frameSize = 2)
    {
        var random = new Random(seed);
        var sequences = new float[count][];
        var labels = new int[count];
        for (int i = 0; i < count; i++)
        {
            var s = new float[frameSize * random.Next(3, 7)];
            for (int t = 0; t < s.Length; t++) s[t] = (float)(2 * random.NextDouble() - 1);
            sequences[i] = s;
            labels[i] = s.Sum() > 0 ? 1 : 0;
        }
        return (sequences, labels);
    }

    public static SequenceClassifierOptions Model(QuantizerKind kind = QuantizerKind.None, RecurrentNormalization normalization = RecurrentNormalization.None,
        RecurrentCellKind cell = RecurrentCellKind.Lstm, int frameSize = 2) => new()
    {
        ClassCount = 2,
        VocabularySize = Vocabulary,
        EmbeddingSize = 8,
        FrameSize = frameSize,
        Recurrent = new QuantizedRecurrentOptions
        {
            Cell = cell, HiddenSize = 24, Normalization = normalization,
            WeightQuantizer = new QuantizerOptions { Kind = kind },
        },
    };

    /// <summary>The model after a save to memory and a load back (dispose it).</summary>
    public static QuantizedSequenceClassifier SavedAndLoaded(QuantizedSequenceClassifier model)
    {
        using var stream = new MemoryStream();
        model.Save(stream);
        stream.Position = 0;
        return QuantizedSequenceClassifier.Load(stream);
    }

    public static TrainingOptions Training(int epochs = 3, int seed = 3) => new()
    {
        Epochs = epochs, BatchSize = 16, Optimizer = OptimizerKind.Adam, LearningRate = 1e-2,
        LearningRateDecay = 1, GradientClipNorm = 1.0, Seed = seed,
    };
}
