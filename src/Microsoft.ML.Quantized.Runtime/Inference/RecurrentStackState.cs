namespace Microsoft.ML.Quantized;

/// <summary>
/// What one sequence's run through a <see cref="PackedRecurrentStack"/> owns: the hidden (and LSTM cell) state of every
/// layer, the step index, the scratch the layers compute gates in, and the kernels they use. The packed model itself is
/// immutable and shared; give each thread its own state (a state is not safe for concurrent use).
/// </summary>
internal sealed class RecurrentStackState
{
    private readonly float[][] _hidden;
    private readonly float[][] _cell;
    private readonly float[] _inputGates;
    private readonly float[] _hiddenGates;

    /// <summary>Creates a zero state for <paramref name="stack"/> (see <see cref="PackedRecurrentStack.CreateState"/>).</summary>
    internal RecurrentStackState(PackedRecurrentStack stack, ScoringKernels kernels)
    {
        ArgumentNullException.ThrowIfNull(stack);
        ArgumentNullException.ThrowIfNull(kernels);
        Stack = stack;
        Kernels = kernels;
        int h = stack.HiddenSize;
        _hidden = new float[stack.LayerCount][];
        _cell = new float[stack.LayerCount][];
        for (int l = 0; l < stack.LayerCount; l++)
        {
            _hidden[l] = new float[h];
            _cell[l] = stack.Cell == RecurrentCellKind.Lstm ? new float[h] : [];
        }
        int rows = stack.Layers[0].Input.Outputs;
        _inputGates = new float[rows];
        _hiddenGates = new float[rows];
    }

    /// <summary>The stack this state belongs to.</summary>
    public PackedRecurrentStack Stack { get; }

    /// <summary>The kernels the layers compute with.</summary>
    public ScoringKernels Kernels { get; }

    /// <summary>Time steps read since creation or the last <see cref="Reset"/> (the index of the next step).</summary>
    public int Position { get; private set; }

    /// <summary>The last layer's hidden state: the stack's output after the last step.</summary>
    public ReadOnlySpan<float> Output => _hidden[^1];

    /// <summary>Hidden state of layer <paramref name="layer"/>.</summary>
    public Span<float> Hidden(int layer) => _hidden[layer];

    /// <summary>LSTM cell state of layer <paramref name="layer"/> (empty for a GRU).</summary>
    public Span<float> Cell(int layer) => _cell[layer];

    /// <summary>Scratch for the input product (G*H values).</summary>
    internal Span<float> InputGates => _inputGates;

    /// <summary>Scratch for the recurrent product (G*H values).</summary>
    internal Span<float> HiddenGates => _hiddenGates;

    /// <summary>Back to the zero state at step 0.</summary>
    public void Reset()
    {
        foreach (var h in _hidden) Array.Clear(h);
        foreach (var c in _cell) Array.Clear(c);
        Position = 0;
    }

    /// <summary>Marks one more step read.</summary>
    internal void Advance() => Position++;
}
