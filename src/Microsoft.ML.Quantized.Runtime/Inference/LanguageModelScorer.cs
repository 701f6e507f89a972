namespace Microsoft.ML.Quantized;

/// <summary>
/// The managed scoring engine of a <see cref="PackedLanguageModelNetwork"/>: scores a token sequence (final hidden state and
/// summed cross-entropy, what the ML.NET transformer reports) or reads one token at a time and returns next-token
/// logits (generation). Holds only per-sequence state and scratch; the model is shared and immutable, so create one
/// scorer per thread and any number of them can score one model at once, without locks. A scorer itself is not safe for
/// concurrent use.
/// </summary>
internal sealed class LanguageModelScorer
{
    private readonly RecurrentStackState _state;
    private readonly float[] _embedded;
    private readonly float[] _logits;
    private readonly float[] _scratch;

    /// <summary>Creates a scorer with the SIMD kernels.</summary>
    public LanguageModelScorer(PackedLanguageModelNetwork model) : this(model, ScoringKernels.Simd) { }

    /// <summary>Creates a scorer with the given kernels (<see cref="ScoringKernels.Reference"/> to check the SIMD ones).</summary>
    public LanguageModelScorer(PackedLanguageModelNetwork model, ScoringKernels kernels)
    {
        ArgumentNullException.ThrowIfNull(model);
        Model = model;
        _state = model.Recurrent.CreateState(kernels);
        _embedded = new float[model.Embedding.Columns];
        _logits = new float[model.VocabularySize];
        _scratch = new float[model.VocabularySize];
    }

    /// <summary>The model.</summary>
    public PackedLanguageModelNetwork Model { get; }

    /// <summary>The last layer's hidden state after the last token read.</summary>
    public ReadOnlySpan<float> Hidden => _state.Output;

    /// <summary>Tokens read since the last <see cref="Reset"/> (or <see cref="Score"/>).</summary>
    public int Position => _state.Position;

    /// <summary>Back to the zero state, before the first token.</summary>
    public void Reset() => _state.Reset();

    /// <summary>
    /// Reads token <paramref name="id"/> after the ones read so far and writes the logits of the next token
    /// (<see cref="PackedLanguageModelNetwork.VocabularySize"/> values, unnormalized) to <paramref name="logits"/>.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="id"/> is outside the vocabulary.</exception>
    /// <exception cref="ArgumentException"><paramref name="logits"/> has the wrong length.</exception>
    public void Step(int id, Span<float> logits)
    {
        CheckId(id, nameof(id));
        if (logits.Length != Model.VocabularySize)
            throw new ArgumentException($"The logits span has {logits.Length} values; the vocabulary has {Model.VocabularySize}.", nameof(logits));
        Read(id);
        Decode(logits);
    }

    /// <summary>
    /// Reads <paramref name="ids"/> from the zero state (ids[0] is the <c>&lt;eos&gt;</c> separator that starts every row)
    /// and returns the summed cross-entropy (nats) of predicting ids[1..] from their prefixes and how many tokens that is
    /// (ids.Length - 1); writes the last layer's final hidden state to <paramref name="hidden"/>. The same answer as
    /// the libtorch evaluation forward of the network it was packed from, to float rounding.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="ids"/> is empty or <paramref name="hidden"/> has the wrong length.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An id is outside the vocabulary.</exception>
    public (double CrossEntropySum, int Count) Score(ReadOnlySpan<int> ids, Span<float> hidden)
    {
        if (ids.IsEmpty) throw new ArgumentException("The id sequence is empty; it starts with the <eos> separator.", nameof(ids));
        if (hidden.Length != Model.Recurrent.HiddenSize)
            throw new ArgumentException($"The hidden span has {hidden.Length} values; the model's hidden size is {Model.Recurrent.HiddenSize}.", nameof(hidden));
        for (int t = 0; t < ids.Length; t++) CheckId(ids[t], $"ids[{t}]");
        Reset();
        double sum = 0;
        for (int t = 0; t < ids.Length; t++)
        {
            Read(ids[t]);
            if (t + 1 == ids.Length) break;
            Decode(_logits);
            sum += _state.Kernels.LogSumExp(_logits, _scratch) - _logits[ids[t + 1]];
        }
        Hidden.CopyTo(hidden);
        return (sum, ids.Length - 1);
    }

    private void Read(int id)
    {
        Model.Embedding.DecodeRow(id, _embedded);
        Model.Recurrent.Step(_embedded, _state);
    }

    private void Decode(Span<float> logits)
    {
        _state.Kernels.MultiplyVector(Model.Decoder, _state.Output, logits);
        _state.Kernels.Add(logits, Model.DecoderBias);
    }

    private void CheckId(int id, string name)
    {
        if ((uint)id >= (uint)Model.VocabularySize)
            throw new ArgumentOutOfRangeException(name, id, $"Token id {id} is outside the vocabulary [0, {Model.VocabularySize}).");
    }
}
