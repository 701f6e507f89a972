using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized.Tests.Inference;

/// <summary>
/// Small random torch networks for the engine tests (hidden 8, vocabulary 11, embedding 6) whose every parameter and
/// statistic is away from its initial value, and the agreement measure the tests use.
/// </summary>
internal static class EngineTestModels
{
    public const int VocabularySize = 11, Embedding = 6, Hidden = 8, FrameSize = 3;

    // Held Scalars: TorchSharp may finalize an implicit temporary mid-call (see Scalars).
    private static readonly Scalar Noise = 0.1, StepSpread = 0.3, StepFloor = 0.6, MeanSpread = 0.3, VarianceSpread = 1.2, VarianceFloor = 0.3;

    /// <summary>Batch-norm statistics sets for BatchPerStep: shorter than the test sequences, so later steps reuse the last set.</summary>
    public const int NormalizedSteps = 3;

    /// <summary>A slope per gate, all different, so a mix-up of their order shows.</summary>
    public static ActivationSlopes MixedSlopes => new() { InputGate = 0.7, ForgetGate = 1.3, OutputGate = 0.9, Candidate = 0.6, CellOutput = 1.5 };

    public static QuantizedRecurrentOptions Recurrent(
        RecurrentCellKind cell, RecurrentNormalization normalization, string weights, string activations = "none", bool mixedSlopes = false, int layers = 1,
        LayerNormForm layerNormForm = LayerNormForm.PerGate)
        => new()
        {
            Cell = cell,
            HiddenSize = Hidden,
            Layers = layers,
            Normalization = normalization,
            LayerNormForm = layerNormForm,
            WeightQuantizer = QuantizerRegistry.Parse(weights),
            ActivationQuantizer = QuantizerRegistry.Parse(activations),
            Slopes = mixedSlopes ? MixedSlopes : new ActivationSlopes(),
            MaxNormalizedSteps = NormalizedSteps,
        };

    /// <summary>A language model with embedding and decoder quantized like the recurrent weights, perturbed (see <see cref="Perturb"/>).</summary>
    public static LanguageModelNetwork LanguageModel(QuantizedRecurrentOptions recurrent, int seed)
    {
        manual_seed(seed);
        var network = new LanguageModelNetwork(VocabularySize, new LanguageModelOptions
        {
            Recurrent = recurrent, EmbeddingSize = Embedding, QuantizeEmbeddingAndDecoder = true,
        });
        using (var scope = NewDisposeScope())
        {
            network.train();
            network.Forward(RandomTokens(seed, 5, 2), null);
        }
        Perturb(network, seed);
        network.eval();
        return network;
    }

    /// <summary>A sequence classifier of 3 classes, perturbed (see <see cref="Perturb"/>).</summary>
    public static SequenceClassifierNetwork Classifier(SequenceClassifierInputKind kind, SequenceClassifierOptions options, int seed)
    {
        manual_seed(seed);
        int inputSize = kind == SequenceClassifierInputKind.Tokens ? VocabularySize : FrameSize;
        options.VocabularySize = VocabularySize;
        options.FrameSize = FrameSize;
        options.EmbeddingSize = Embedding;
        var network = new SequenceClassifierNetwork(kind, inputSize, options);
        using (var scope = NewDisposeScope())
        {
            network.train();
            var input = kind == SequenceClassifierInputKind.Tokens ? RandomTokens(seed, 5, 2) : randn(5, 2, FrameSize);
            network.Forward(input, tensor(new long[] { 5, 3 }));
        }
        Perturb(network, seed);
        network.eval();
        return network;
    }

    /// <summary>
    /// Moves every parameter off its initialization (+ 0.1 N(0, 1)), learned steps to 60-90 % of their first value (so
    /// they clip), batch-norm running means to 0.3 N(0, 1) and variances to U(0.3, 1.5), every row and step different.
    /// Call after one training forward, which creates and initializes the learned steps.
    /// </summary>
    public static void Perturb(nn.Module network, int seed)
    {
        manual_seed(seed + 1000);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        foreach (var (name, p) in network.named_parameters())
        {
            if (name.EndsWith("step", StringComparison.Ordinal)) p.mul_(rand_like(p).mul(StepSpread).add(StepFloor, Scalars.One));
            else p.add_(randn_like(p).mul(Noise), Scalars.One);
        }
        foreach (var (name, b) in network.named_buffers())
        {
            if (name.EndsWith("running_mean", StringComparison.Ordinal)) b.copy_(randn_like(b).mul(MeanSpread));
            else if (name.EndsWith("running_var", StringComparison.Ordinal)) b.copy_(rand_like(b).mul(VarianceSpread).add(VarianceFloor, Scalars.One));
        }
    }

    /// <summary>Token ids [time, batch] (int64) in [0, VocabularySize); the first row is 0 (the &lt;eos&gt; separator).</summary>
    public static Tensor RandomTokens(int seed, int time, int batch)
    {
        var ids = Ids(seed, time * batch);
        for (int b = 0; b < batch; b++) ids[b] = 0;
        return tensor(ids.Select(i => (long)i).ToArray(), new long[] { time, batch });
    }

    /// <summary><paramref name="count"/> ids in [0, VocabularySize) from a seeded generator, the first 0.</summary>
    public static int[] Ids(int seed, int count)
    {
        var rng = new Random(seed);
        var ids = new int[count];
        for (int i = 1; i < count; i++) ids[i] = rng.Next(VocabularySize);
        return ids;
    }

    /// <summary>The values of a tensor as float32.</summary>
    public static float[] Values(Tensor t)
    {
        using var cpu = t.detach().cpu().to_type(ScalarType.Float32).contiguous();
        return cpu.data<float>().ToArray();
    }

    /// <summary>
    /// The relative error the tests bound: <c>max_i |actual_i - expected_i| / max_i |expected_i|</c>, the max-norm of the
    /// difference over the max-norm of the expected values (libtorch's), over all values compared at once. Fails when the
    /// expected values are all (nearly) zero, where the measure would be meaningless.
    /// </summary>
    public static double RelativeError(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, string what)
    {
        Assert.AreEqual(expected.Length, actual.Length, $"{what}: length");
        double scale = 0, error = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            scale = Math.Max(scale, Math.Abs(expected[i]));
            error = Math.Max(error, Math.Abs((double)actual[i] - expected[i]));
        }
        Assert.IsTrue(scale > 1e-3, $"{what}: the expected values are all near zero (max |x| = {scale:G3}); the comparison would prove nothing.");
        return error / scale;
    }
}
