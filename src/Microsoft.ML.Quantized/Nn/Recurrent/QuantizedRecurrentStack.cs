using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized;

/// <summary>
/// Layers of quantized LSTM or GRU cells with dropout between layers. Runs the fused libtorch kernel when
/// only weights are quantized and there is no in-cell normalization, else the cell loop.
/// </summary>
/// <remarks>
/// Layers are registered as <c>layers.{l}</c> (<see cref="QuantizedLstmCell"/> or <see cref="QuantizedGruCell"/>),
/// so the state dictionary holds <c>layers.0.weight_ih</c> and so on. Weight normalization also keeps the
/// fused kernel (it only rescales the weight rows); layer and batch normalization, activation quantizers and
/// slopes other than 1 run the cell loop. Dropout (<see cref="QuantizedRecurrentOptions.Dropout"/>) is applied to
/// each layer's output that feeds the next layer and to the stack's output, in training only.
/// </remarks>
internal sealed class QuantizedRecurrentStack : nn.Module
{
    private readonly ModuleList<QuantizedRecurrentCell> layers;
    private readonly QuantizedRecurrentOptions options;

    /// <summary>Creates the stack with quantizers made by <see cref="QuantizerRegistry"/> from the options.</summary>
    public QuantizedRecurrentStack(string name, int inputSize, QuantizedRecurrentOptions options)
        : this(name, inputSize, options,
            QuantizedRecurrentCell.WeightQuantizers(options, QuantizedRecurrentCell.GateCount(options.Cell)),
            () => QuantizerFactory.Create(options.ActivationQuantizer))
    {
    }

    /// <summary>
    /// Creates the stack with the given quantizer factories; each is called once per quantized tensor
    /// (two weight matrices per layer; each quantized activation of each layer).
    /// </summary>
    public QuantizedRecurrentStack(
        string name, int inputSize, QuantizedRecurrentOptions options, Func<Quantizer> weightQuantizer, Func<Quantizer> activationQuantizer)
        : base(name)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(weightQuantizer);
        ArgumentNullException.ThrowIfNull(activationQuantizer);
        Validate(inputSize, options);
        this.options = options.Clone();
        InputSize = inputSize;
        layers = new ModuleList<QuantizedRecurrentCell>();
        for (int l = 0; l < this.options.Layers; l++)
        {
            int layerInput = l == 0 ? inputSize : this.options.HiddenSize;
            layers.Add(this.options.Cell == RecurrentCellKind.Lstm
                ? new QuantizedLstmCell($"layer{l}", layerInput, this.options, weightQuantizer, activationQuantizer)
                : new QuantizedGruCell($"layer{l}", layerInput, this.options, weightQuantizer, activationQuantizer));
        }
        register_module("layers", layers);
    }

    /// <summary>Input features.</summary>
    public int InputSize { get; }

    /// <summary>Hidden units per layer.</summary>
    public int HiddenSize => options.HiddenSize;

    /// <summary>Stacked layers.</summary>
    public int LayerCount => layers.Count;

    /// <summary>The cell kind.</summary>
    public RecurrentCellKind Cell => options.Cell;

    /// <summary>The layers, first to last.</summary>
    public IReadOnlyList<QuantizedRecurrentCell> Layers => layers.ToList();

    /// <summary>True when forward runs the fused libtorch kernel.</summary>
    public bool UsesFusedKernel => layers.All(l => l.UsesFusedKernel);

    /// <summary>Testing switch: run the cell loop in every layer even where the fused kernel could run.</summary>
    internal bool ForceCellLoop
    {
        get => layers.Any(l => l.ForceCellLoop);
        set
        {
            foreach (var layer in layers) layer.ForceCellLoop = value;
        }
    }

    /// <summary>Testing and benchmark switch: run the fused kernel in every layer wherever it can run.</summary>
    internal bool ForceFusedKernel
    {
        get => layers.Any(l => l.ForceFusedKernel);
        set
        {
            foreach (var layer in layers) layer.ForceFusedKernel = value;
        }
    }

    /// <summary>
    /// input [time, batch, inputSize]; state null = zeros. Returns output [time, batch, hidden] (after the
    /// output dropout) and the final state.
    /// </summary>
    public (Tensor Output, RecurrentState State) Forward(Tensor input, RecurrentState? state)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (input.dim() != 3 || input.shape[2] != InputSize || input.shape[0] < 1)
            throw new ArgumentException(
                $"Recurrent input must be [time >= 1, batch, {InputSize}] (time-major); got [{string.Join(", ", input.shape)}].", nameof(input));
        long batch = input.shape[1];
        bool lstm = options.Cell == RecurrentCellKind.Lstm;
        if (state is not null) CheckState(state, batch, lstm);

        using var scope = NewDisposeScope();
        var x = input;
        var hs = new Tensor[layers.Count];
        var cs = new Tensor[layers.Count];
        for (int l = 0; l < layers.Count; l++)
        {
            var h0 = state is null ? zeros(batch, HiddenSize, input.dtype, input.device) : state.H[l];
            Tensor? c0 = !lstm ? null : state is null ? zeros(batch, HiddenSize, input.dtype, input.device) : state.C![l];
            var (output, h, c) = layers[l].Forward(x, h0, c0);
            hs[l] = h;
            if (lstm) cs[l] = c!;
            x = Dropout(output);
        }
        var finalState = new RecurrentState(stack(hs, 0), lstm ? stack(cs, 0) : null);
        return (x.MoveToOuterDisposeScope(), finalState.MoveToOuterDisposeScope());
    }

    /// <summary>Every quantized weight matrix with its name and quantizer, for packing, size and KURE.</summary>
    /// <remarks>
    /// Names are the state-dictionary names (<c>layers.{l}.weight_ih</c>, <c>layers.{l}.weight_hh</c>); the tensor
    /// is the float shadow weight. Under <see cref="RecurrentNormalization.Weight"/> the weight the cell uses is
    /// <c>g * Q(W) / ||Q(W)||_row</c>: a packer folds <c>g / ||Q(W)||_row</c> into per-row scales (see
    /// <see cref="QuantizedRecurrentCell.WeightIhNorm"/>).
    /// </remarks>
    public IEnumerable<(string Name, Tensor Weight, Quantizer Quantizer)> QuantizedWeights()
    {
        for (int l = 0; l < layers.Count; l++)
        {
            yield return ($"layers.{l}.weight_ih", layers[l].WeightIh, layers[l].WeightIhQuantizer);
            yield return ($"layers.{l}.weight_hh", layers[l].WeightHh, layers[l].WeightHhQuantizer);
        }
    }

    private Tensor Dropout(Tensor x)
        => training && options.Dropout > 0 ? TrainingRandom.Dropout(x, options.Dropout) : x;

    private void CheckState(RecurrentState state, long batch, bool lstm)
    {
        static string Shape(Tensor t) => "[" + string.Join(", ", t.shape) + "]";
        if (state.H.dim() != 3 || state.H.shape[0] != layers.Count || state.H.shape[1] != batch || state.H.shape[2] != HiddenSize)
            throw new ArgumentException(
                $"Recurrent state H must be [layers {layers.Count}, batch {batch}, hidden {HiddenSize}]; got {Shape(state.H)}.", nameof(state));
        if (lstm && (state.C is null || !state.C.shape.SequenceEqual(state.H.shape)))
            throw new ArgumentException(
                $"LSTM state needs C of shape {Shape(state.H)}; got {(state.C is null ? "none" : Shape(state.C))}.", nameof(state));
    }

    private static void Validate(int inputSize, QuantizedRecurrentOptions o)
    {
        if (inputSize <= 0)
            throw new ArgumentOutOfRangeException(nameof(inputSize), inputSize, $"The recurrent stack's input size must be positive; got {inputSize}.");
        OptionsValidator.Validate(o);
    }
}
