using BenchmarkDotNet.Attributes;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized.Benchmarks;

/// <summary>
/// One streamed token of a word LM (vocabulary 10k, embedding = hidden = 256, one layer, randomly initialized): the managed
/// engine's <c>LanguageModelScorer.Step</c> on the packed TWN + weight-norm model (embedding and decoder ternary too), and the
/// TorchSharp forward of the float model of the same architecture (<see cref="QuantizerKind.None"/>, fused kernel) on a
/// [1, 1] token tensor with the state carried, under <c>no_grad</c> + <c>eval()</c>, one libtorch thread. Both compute the
/// next token's 10k logits. The engine also without the decoder (embedding row + stack), which is what a classifier or a
/// features stream pays per token.
/// </summary>
[MemoryDiagnoser]
public class LanguageModelStepBenchmarks
{
    private const int Vocabulary = 10_000;
    private int[] _tokens = null!;
    private int _position;
    private LanguageModelNetwork _float = null!;
    private PackedLanguageModelNetwork _packed = null!;
    private LanguageModelScorer _scorer = null!;
    private RecurrentStackState _state = null!;
    private float[] _embedded = null!;
    private float[] _logits = null!;
    private RecurrentState? _torchState;

    /// <summary>LSTM or GRU.</summary>
    [Params(RecurrentCellKind.Lstm, RecurrentCellKind.Gru)]
    public RecurrentCellKind Cell { get; set; }

    /// <summary>Hidden size (and embedding size).</summary>
    [Params(256)]
    public int Hidden { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        torch.set_num_threads(1);
        var random = new Random(1);
        _tokens = Enumerable.Range(0, 8192).Select(_ => random.Next(Vocabulary)).ToArray();
        using (TrainingRandom.Use(1))
        {
            using var quantized = new LanguageModelNetwork(Vocabulary, Options(QuantizerKind.TernaryWeightNet, RecurrentNormalization.Weight, true));
            _packed = PackedModelEncoder.Encode(quantized);
            _float = new LanguageModelNetwork(Vocabulary, Options(QuantizerKind.None, RecurrentNormalization.None, false));
        }
        _float.eval();
        _scorer = new LanguageModelScorer(_packed);
        _state = _packed.Recurrent.CreateState(ScoringKernels.Simd);
        _embedded = new float[_packed.Embedding.Columns];
        _logits = new float[Vocabulary];
    }

    private LanguageModelOptions Options(QuantizerKind quantizer, RecurrentNormalization normalization, bool quantizeOuter) => new()
    {
        EmbeddingSize = Hidden,
        QuantizeEmbeddingAndDecoder = quantizeOuter,
        Recurrent = new QuantizedRecurrentOptions
        {
            Cell = Cell, HiddenSize = Hidden,
            WeightQuantizer = new QuantizerOptions { Kind = quantizer },
            Normalization = normalization,
        },
    };

    [GlobalCleanup]
    public void Cleanup()
    {
        _torchState?.Dispose();
        _float.Dispose();
    }

    /// <summary>Engine: one token in, 10k logits out.</summary>
    [Benchmark(Baseline = true)]
    public void EngineStep() => _scorer.Step(_tokens[_position++ & 8191], _logits);

    /// <summary>Engine: embedding row and the recurrent stack only.</summary>
    [Benchmark]
    public void EngineEmbeddingAndStack()
    {
        _packed.Embedding.DecodeRow(_tokens[_position++ & 8191], _embedded);
        _packed.Recurrent.Step(_embedded, _state);
    }

    /// <summary>TorchSharp float forward: one token in, 10k logits out, state carried.</summary>
    [Benchmark]
    public void TorchFloatStep()
    {
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        var input = torch.tensor(new long[] { _tokens[_position++ & 8191] }).reshape(1, 1);
        var (_, next) = _float.Forward(input, _torchState);
        _torchState?.Dispose();
        _torchState = next.DetachFromDisposeScope();
    }
}
