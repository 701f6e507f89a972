namespace Microsoft.ML.Quantized;

/// <summary>
/// One recurrent layer in evaluation form, what LSTM and GRU share: the input and recurrent products
/// (<see cref="PackedProjection"/>, G gate blocks of H rows each, PyTorch gate order), the HitNet slopes of the
/// nonlinearities (<c>ActivationSlopes</c>) and one activation quantizer per quantized activation. Immutable: a
/// step reads and writes only the <see cref="RecurrentStackState"/> it is given.
/// </summary>
/// <remarks>
/// Fields: the input projection (<c>W_ih</c>, G*H x inputs), the recurrent projection (<c>W_hh</c>, G*H x H), the slopes
/// (float array), the activation quantizers (one after the other), then the cell's own fields (see the subclasses).
/// </remarks>
internal abstract class PackedRecurrentLayer
{
    private readonly float[] _slopes;
    private readonly PackedActivationQuantizer[] _activations;

    /// <param name="gates">Gate blocks G.</param>
    /// <param name="input">norm(W_ih x) + b_ih.</param>
    /// <param name="hidden">norm(W_hh h) + b_hh.</param>
    /// <param name="slopes">One slope per nonlinearity, each positive and finite.</param>
    /// <param name="activations">One quantizer per quantized activation.</param>
    /// <param name="slopeCount">Nonlinearities of the cell.</param>
    /// <param name="activationCount">Quantized activations of the cell.</param>
    protected PackedRecurrentLayer(
        int gates, PackedProjection input, PackedProjection hidden, ReadOnlySpan<float> slopes,
        IReadOnlyList<PackedActivationQuantizer> activations, int slopeCount, int activationCount)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(hidden);
        ArgumentNullException.ThrowIfNull(activations);
        int h = hidden.Inputs;
        if (h < 1 || hidden.Outputs != gates * h || input.Outputs != gates * h)
            throw new ArgumentException(
                $"A {Cell} layer of hidden size {h} needs {gates} * {h} rows in both products; got {input.Outputs} (input) and {hidden.Outputs} (recurrent).",
                nameof(hidden));
        if (slopes.Length != slopeCount)
            throw new ArgumentException($"A {Cell} layer takes {slopeCount} slopes; got {slopes.Length}.", nameof(slopes));
        foreach (float slope in slopes)
            if (!(slope > 0 && float.IsFinite(slope)))
                throw new ArgumentOutOfRangeException(nameof(slopes), slope, "Slopes must be positive and finite.");
        if (activations.Count != activationCount || activations.Any(a => a is null))
            throw new ArgumentException($"A {Cell} layer takes {activationCount} activation quantizers; got {activations.Count}.", nameof(activations));
        Input = input;
        Hidden = hidden;
        HiddenSize = h;
        _slopes = slopes.ToArray();
        _activations = activations.ToArray();
    }

    /// <summary>LSTM or GRU.</summary>
    public abstract RecurrentCellKind Cell { get; }

    /// <summary>Input features.</summary>
    public int InputSize => Input.Inputs;

    /// <summary>Hidden units H.</summary>
    public int HiddenSize { get; }

    /// <summary><c>norm(W_ih x) + b_ih</c>.</summary>
    public PackedProjection Input { get; }

    /// <summary><c>norm(W_hh h) + b_hh</c>.</summary>
    public PackedProjection Hidden { get; }

    /// <summary>The slopes, in the cell's order of nonlinearities.</summary>
    public ReadOnlySpan<float> Slopes => _slopes;

    /// <summary>The activation quantizers, in the cell's order of activations.</summary>
    public IReadOnlyList<PackedActivationQuantizer> Activations => _activations;

    /// <summary>
    /// Advances layer <paramref name="layer"/> of <paramref name="state"/> by one time step (step index
    /// <see cref="RecurrentStackState.Position"/>) on <paramref name="input"/> (<see cref="InputSize"/> values).
    /// </summary>
    public abstract void Step(ReadOnlySpan<float> input, int layer, RecurrentStackState state);

    /// <summary>sigma(x / slope) of nonlinearity <paramref name="slope"/>, then activation quantizer <paramref name="activation"/>, in place.</summary>
    protected void SigmoidGate(Span<float> values, int slope, int activation, ScoringKernels kernels)
    {
        kernels.Sigmoid(values, _slopes[slope]);
        _activations[activation].Apply(values);
    }

    /// <summary>tanh(x / slope) of nonlinearity <paramref name="slope"/>, then activation quantizer <paramref name="activation"/>, in place.</summary>
    protected void TanhGate(Span<float> values, int slope, int activation, ScoringKernels kernels)
    {
        kernels.Tanh(values, _slopes[slope]);
        _activations[activation].Apply(values);
    }

    /// <summary>Activation quantizer <paramref name="activation"/> in place.</summary>
    protected void Quantize(Span<float> values, int activation) => _activations[activation].Apply(values);

    /// <summary>Writes the shared fields; a cell with its own fields writes them after calling this.</summary>
    internal virtual void Write(PackedModelWriter writer)
    {
        Input.Write(writer);
        Hidden.Write(writer);
        writer.WriteSingles(_slopes);
        foreach (var activation in _activations) activation.Write(writer);
    }

    /// <summary>
    /// Reads a layer written by <see cref="Write"/>; without <paramref name="cellStateQuantizer"/> (files from before the LSTM
    /// cell state could be quantized) an LSTM layer holds five activation quantizers and its cell state stays float.
    /// </summary>
    internal static PackedRecurrentLayer Read(PackedModelReader reader, string field, RecurrentCellKind cell, int inputSize, int hiddenSize, bool cellStateQuantizer)
    {
        bool lstm = cell == RecurrentCellKind.Lstm;
        int gates = lstm ? PackedLstmLayer.GateCount : PackedGruLayer.GateCount;
        int rows = checked(gates * hiddenSize);
        var input = PackedProjection.Read(reader, $"{field} input projection", rows, inputSize);
        var hidden = PackedProjection.Read(reader, $"{field} recurrent projection", rows, hiddenSize);
        var slopes = reader.ReadSingles($"{field} slopes", lstm ? PackedLstmLayer.SlopeCount : PackedGruLayer.SlopeCount);
        var activations = new PackedActivationQuantizer[lstm ? PackedLstmLayer.ActivationCount : PackedGruLayer.ActivationCount];
        int stored = lstm && !cellStateQuantizer ? PackedLstmLayer.FloatCellStateActivationCount : activations.Length;
        for (int a = 0; a < activations.Length; a++)
            activations[a] = a < stored ? PackedActivationQuantizer.Read(reader, $"{field} activation quantizer {a}") : PackedActivationQuantizer.None;
        if (!lstm) return new PackedGruLayer(input, hidden, slopes, activations);
        var cellNormalization = PackedNormalization.Read(reader, $"{field} cell normalization", hiddenSize);
        return new PackedLstmLayer(input, hidden, slopes, activations, cellNormalization);
    }
}
