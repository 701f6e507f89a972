namespace Microsoft.ML.Quantized;

/// <summary>
/// A quantized LSTM or GRU stack in its packed, immutable, libtorch-free evaluation form: layers of
/// <see cref="PackedLstmLayer"/> or <see cref="PackedGruLayer"/>, layer l + 1 reading layer l's hidden state (dropout is
/// the identity in evaluation). Built from a trained <c>QuantizedRecurrentStack</c> by
/// <c>PackedModelEncoder</c>; run one time step at a time with <see cref="Step"/> on a
/// <see cref="RecurrentStackState"/>, which holds everything that changes. Any number of states (threads) can run one
/// stack at once.
/// </summary>
/// <remarks>
/// Fields (see <see cref="PackedModelWriter"/>): byte cell (0 LSTM, 1 GRU), int32 layers (1..64), int32 input size,
/// int32 hidden size, then each layer (<see cref="PackedRecurrentLayer"/>).
/// </remarks>
internal sealed class PackedRecurrentStack
{
    /// <summary>Most layers accepted.</summary>
    public const int MaxLayers = 64;

    private readonly PackedRecurrentLayer[] _layers;

    /// <summary>Creates the stack; every layer has the same cell and hidden size, and layer l + 1 reads H values.</summary>
    public PackedRecurrentStack(IReadOnlyList<PackedRecurrentLayer> layers)
    {
        ArgumentNullException.ThrowIfNull(layers);
        if (layers.Count is < 1 or > MaxLayers)
            throw new ArgumentException($"A recurrent stack has 1..{MaxLayers} layers; got {layers.Count}.", nameof(layers));
        var first = layers[0] ?? throw new ArgumentException("Layer 0 is null.", nameof(layers));
        for (int l = 1; l < layers.Count; l++)
        {
            var layer = layers[l] ?? throw new ArgumentException($"Layer {l} is null.", nameof(layers));
            if (layer.Cell != first.Cell || layer.HiddenSize != first.HiddenSize || layer.InputSize != first.HiddenSize)
                throw new ArgumentException(
                    $"Layer {l} is a {layer.Cell} of {layer.InputSize} -> {layer.HiddenSize}; layer 0 makes it a {first.Cell} of {first.HiddenSize} -> {first.HiddenSize}.",
                    nameof(layers));
        }
        _layers = layers.ToArray();
    }

    /// <summary>LSTM or GRU.</summary>
    public RecurrentCellKind Cell => _layers[0].Cell;

    /// <summary>Input features of the first layer.</summary>
    public int InputSize => _layers[0].InputSize;

    /// <summary>Hidden units per layer.</summary>
    public int HiddenSize => _layers[0].HiddenSize;

    /// <summary>Number of layers.</summary>
    public int LayerCount => _layers.Length;

    /// <summary>The layers, first to last.</summary>
    public IReadOnlyList<PackedRecurrentLayer> Layers => _layers;

    /// <summary>A zero state for one sequence, computing with <paramref name="kernels"/>.</summary>
    public RecurrentStackState CreateState(ScoringKernels kernels) => new(this, kernels);

    /// <summary>
    /// Reads one time step (<see cref="InputSize"/> values) into <paramref name="state"/> through every layer and returns
    /// the last layer's new hidden state (a view of the state, valid until its next step).
    /// </summary>
    /// <exception cref="ArgumentException">The input has the wrong length or the state belongs to another stack.</exception>
    public ReadOnlySpan<float> Step(ReadOnlySpan<float> input, RecurrentStackState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (!ReferenceEquals(state.Stack, this)) throw new ArgumentException("The state was created for another stack.", nameof(state));
        if (input.Length != InputSize) throw new ArgumentException($"The input has {input.Length} values; the stack reads {InputSize}.", nameof(input));
        _layers[0].Step(input, 0, state);
        for (int l = 1; l < _layers.Length; l++) _layers[l].Step(state.Hidden(l - 1), l, state);
        state.Advance();
        return state.Output;
    }

    internal void Write(PackedModelWriter writer)
    {
        writer.WriteByte((byte)Cell);
        writer.WriteInt32(LayerCount);
        writer.WriteInt32(InputSize);
        writer.WriteInt32(HiddenSize);
        foreach (var layer in _layers) layer.Write(writer);
    }

    /// <summary>Reads a stack written by <see cref="Write"/>; <paramref name="cellStateQuantizer"/>: the file's LSTM layers hold a cell-state quantizer.</summary>
    internal static PackedRecurrentStack Read(PackedModelReader reader, bool cellStateQuantizer)
    {
        byte cell = reader.ReadByte("cell kind");
        if (cell > (byte)RecurrentCellKind.Gru) throw reader.Damaged($"cell kind {cell} is unknown");
        int layerCount = reader.ReadInt32("layer count", 1, MaxLayers);
        int inputSize = reader.ReadInt32("input size", 1, PackedModelReader.MaxDimension);
        int hiddenSize = reader.ReadInt32("hidden size", 1, PackedModelReader.MaxDimension);
        var layers = new PackedRecurrentLayer[layerCount];
        for (int l = 0; l < layerCount; l++)
            layers[l] = PackedRecurrentLayer.Read(reader, $"layer {l}", (RecurrentCellKind)cell, l == 0 ? inputSize : hiddenSize, hiddenSize, cellStateQuantizer);
        return new PackedRecurrentStack(layers);
    }
}
