using System.Numerics.Tensors;

namespace Microsoft.ML.Quantized;

/// <summary>
/// The managed scoring engine of a <see cref="PackedSequenceClassifierNetwork"/>: class probabilities (softmax of the head's
/// logits of the hidden states pooled over the sequence's steps) of a token-id or float-frame sequence, as
/// <c>QuantizedSequenceClassifier.Predict(int[])</c> computes them with libtorch. Holds only per-sequence state and
/// scratch; the model is shared and immutable, so create one scorer per thread. A scorer itself is not safe for concurrent
/// use.
/// </summary>
internal sealed class SequenceClassifierScorer
{
    private readonly RecurrentStackState _state;
    private readonly float[] _embedded;
    private readonly float[] _pooled;
    private int _steps;

    /// <summary>Creates a scorer with the SIMD kernels.</summary>
    public SequenceClassifierScorer(PackedSequenceClassifierNetwork model) : this(model, ScoringKernels.Simd) { }

    /// <summary>Creates a scorer with the given kernels (<see cref="ScoringKernels.Reference"/> to check the SIMD ones).</summary>
    public SequenceClassifierScorer(PackedSequenceClassifierNetwork model, ScoringKernels kernels)
    {
        ArgumentNullException.ThrowIfNull(model);
        Model = model;
        _state = model.Recurrent.CreateState(kernels);
        _embedded = new float[model.Recurrent.InputSize];
        _pooled = new float[model.Recurrent.HiddenSize];
    }

    /// <summary>The model.</summary>
    public PackedSequenceClassifierNetwork Model { get; }

    /// <summary>Writes the class probabilities of a token sequence (at least one id, each in the vocabulary).</summary>
    /// <exception cref="InvalidOperationException">The model reads frames.</exception>
    /// <exception cref="ArgumentException">The sequence is empty or <paramref name="probabilities"/> is not ClassCount long.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An id is outside the vocabulary.</exception>
    public void Predict(ReadOnlySpan<int> tokens, Span<float> probabilities)
    {
        if (Model.InputKind != SequenceClassifierInputKind.Tokens)
            throw new InvalidOperationException($"This classifier reads float frames ({Model.InputSize} values per step), not token ids.");
        if (tokens.IsEmpty) throw new ArgumentException("The sequence is empty; it needs at least one token.", nameof(tokens));
        CheckOutput(probabilities);
        for (int t = 0; t < tokens.Length; t++)
            if ((uint)tokens[t] >= (uint)Model.InputSize)
                throw new ArgumentOutOfRangeException(nameof(tokens), tokens[t], $"tokens[{t}] = {tokens[t]} is outside the vocabulary [0, {Model.InputSize}).");
        Reset();
        foreach (int id in tokens)
        {
            Model.Embedding!.DecodeRow(id, _embedded);
            Step(_embedded);
        }
        Classify(probabilities);
    }

    /// <summary>Writes the class probabilities of a float sequence: consecutive frames of <see cref="PackedSequenceClassifierNetwork.InputSize"/> values.</summary>
    /// <exception cref="InvalidOperationException">The model reads token ids.</exception>
    /// <exception cref="ArgumentException">The sequence is empty or not whole frames, or <paramref name="probabilities"/> is not ClassCount long.</exception>
    public void Predict(ReadOnlySpan<float> frames, Span<float> probabilities)
    {
        if (Model.InputKind != SequenceClassifierInputKind.Frames)
            throw new InvalidOperationException($"This classifier reads token ids (vocabulary {Model.InputSize}), not float frames.");
        int size = Model.InputSize;
        if (frames.IsEmpty || frames.Length % size != 0)
            throw new ArgumentException($"The sequence has {frames.Length} values; it needs one or more whole frames of {size}.", nameof(frames));
        CheckOutput(probabilities);
        Reset();
        for (int offset = 0; offset < frames.Length; offset += size) Step(frames.Slice(offset, size));
        Classify(probabilities);
    }

    private void Reset()
    {
        _state.Reset();
        _steps = 0;
    }

    /// <summary>One step of the stack, then the running sum (mean pooling) or maximum (max pooling) of its outputs.</summary>
    private void Step(ReadOnlySpan<float> input)
    {
        Model.Recurrent.Step(input, _state);
        var output = _state.Output;
        switch (Model.Pooling)
        {
            case SequencePooling.Mean when _steps == 0:
            case SequencePooling.Max when _steps == 0:
                output.CopyTo(_pooled);
                break;
            case SequencePooling.Mean:
                TensorPrimitives.Add(_pooled, output, _pooled);
                break;
            case SequencePooling.Max:
                TensorPrimitives.Max(_pooled, output, _pooled);
                break;
        }
        _steps++;
    }

    /// <summary>Head logits of the pooled hidden state, then softmax, into <paramref name="probabilities"/>.</summary>
    private void Classify(Span<float> probabilities)
    {
        var kernels = _state.Kernels;
        ReadOnlySpan<float> pooled = _pooled;
        switch (Model.Pooling)
        {
            case SequencePooling.Last:
                pooled = _state.Output;
                break;
            case SequencePooling.Mean:
                TensorPrimitives.Divide(_pooled, _steps, _pooled);
                break;
        }
        kernels.MultiplyVector(Model.Head, pooled, probabilities);
        kernels.Add(probabilities, Model.HeadBias);
        kernels.Softmax(probabilities, probabilities);
    }

    private void CheckOutput(Span<float> probabilities)
    {
        if (probabilities.Length != Model.ClassCount)
            throw new ArgumentException($"The probabilities span has {probabilities.Length} values; the model has {Model.ClassCount} classes.", nameof(probabilities));
    }
}
