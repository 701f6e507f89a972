using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized;

/// <summary>
/// One quantized LSTM layer (PyTorch layout and gate order i, f, g, o):
/// <code>
/// i = s(a_i / l_i)   f = s(a_f / l_f)   g = tanh(a_g / l_g)   o = s(a_o / l_o)
/// c' = Qc(f * c + i * g)        h' = o * tanh(norm_c(c') / l_c)
/// a = norm(Q(W_ih) x) + norm(Q(W_hh) h) + b_ih + b_hh
/// </code>
/// where l are the HitNet slopes (<see cref="ActivationSlopes"/>: InputGate, ForgetGate, Candidate,
/// OutputGate, CellOutput), <c>norm</c> the in-cell normalization and <c>norm_c</c> the layer normalization of
/// the cell state (only <see cref="RecurrentNormalization.Layer"/> in its <see cref="LayerNormForm.Joint"/> form, Ba et
/// al. 2016; the identity otherwise, including Hou et al.'s default <see cref="LayerNormForm.PerGate"/> form).
/// </summary>
/// <remarks>
/// The activation quantizer (HitNet) is applied to the four gate outputs i, f, g, o (after their activations)
/// and to the emitted hidden state h' (which the next step and the next layer read), as
/// <see cref="QuantizedRecurrentOptions.QuantizedActivations"/> selects (default both); the cell state c stays float
/// (it is an accumulator) unless it names <see cref="RecurrentActivations.CellState"/> (Qc above). Quantizers registered:
/// <c>input_gate</c>, <c>forget_gate</c>, <c>candidate</c>, <c>output_gate</c>, <c>hidden</c>, <c>cell_state</c> (each
/// <c>_quantizer</c>; the identity where not selected).
/// <para>Where the fused kernel cannot run, the loop is <see cref="LstmSequenceFunction"/> (one autograd operation with a
/// hand-written backward) unless an activation quantizer without a span form (<see cref="ISpanActivationQuantizer"/>; BTQ has
/// one) or the cell-state normalization is in the step, or the tensors are not float32/float64 on the CPU; then every step's
/// operations are recorded for autograd.</para>
/// </remarks>
internal sealed class QuantizedLstmCell : QuantizedRecurrentCell
{
    private static readonly (string, RecurrentActivations)[] Activations =
    {
        ("input_gate", RecurrentActivations.Gates), ("forget_gate", RecurrentActivations.Gates), ("candidate", RecurrentActivations.Gates),
        ("output_gate", RecurrentActivations.Gates), ("hidden", RecurrentActivations.Hidden), ("cell_state", RecurrentActivations.CellState),
    };
    private static readonly string[] GateNames = { "input", "forget", "candidate", "output" };
    private readonly RecurrentLayerNorm? cellLayerNorm;

    /// <summary>Creates the layer with quantizers from the options.</summary>
    public QuantizedLstmCell(string name, int inputSize, QuantizedRecurrentOptions options)
        : this(name, inputSize, options,
            WeightQuantizers(options, PackedLstmLayer.GateCount),
            () => QuantizerFactory.Create(options.ActivationQuantizer))
    {
    }

    /// <summary>Creates the layer with the given quantizer factories (one new instance per quantized tensor).</summary>
    public QuantizedLstmCell(string name, int inputSize, QuantizedRecurrentOptions options, Func<Quantizer> weightQuantizer, Func<Quantizer> activationQuantizer)
        : base(name, 4, Activations, inputSize, options, weightQuantizer, activationQuantizer)
    {
        if (Normalization == RecurrentNormalization.Layer && LayerNormForm == LayerNormForm.Joint)
        {
            cellLayerNorm = new RecurrentLayerNorm("cell_norm", HiddenSize);
            register_module("cell_norm", cellLayerNorm);
        }
    }

    /// <inheritdoc/>
    public override bool HasCellState => true;

    /// <inheritdoc/>
    public override IReadOnlyList<string> Gates => GateNames;

    /// <summary>Layer normalization of the cell state before its tanh (joint Layer normalization only).</summary>
    public RecurrentLayerNorm? CellLayerNorm => cellLayerNorm;

    /// <inheritdoc/>
    protected override (Tensor Output, Tensor H, Tensor? C) RunFused(Tensor input, Tensor h0, Tensor? c0, Tensor weightIh, Tensor weightHh)
    {
        var (output, h, c) = FusedRecurrentKernel.Lstm(input, h0, c0!, weightIh, weightHh, BiasIh, BiasHh, training);
        return (output, h, c);
    }

    /// <inheritdoc/>
    /// <remarks>Not with the joint layer norm's normalization of the cell state, which the sequence function lacks.</remarks>
    internal override bool RunsSequenceFunction(Tensor input) => cellLayerNorm is null && base.RunsSequenceFunction(input);

    /// <inheritdoc/>
    protected override (Tensor Output, Tensor H, Tensor? C) RunLoop(Tensor input, Tensor h0, Tensor? c0, Tensor weightIh, Tensor weightHh)
    {
        if (RunsSequenceFunction(input))
        {
            var settings = new RecurrentSequenceSettings(Slopes, new SequenceNormalization(HiddenLayerNorm, HiddenBatchNorm, training), SpanActivationQuantizers()!);
            var gain = HiddenLayerNorm?.Gain ?? HiddenBatchNorm?.Gain;
            var (output, hT, cT) = LstmSequenceFunction.Run(InputTerms(input, weightIh, withHiddenBiases: true), weightHh, h0, c0!, gain,
                LearnedSteps(input.shape[1]), settings);
            return (output, hT, cT);
        }
        var slopes = Slopes;
        int steps = (int)input.shape[0];
        var inputTerms = InputTerms(input, weightIh, withHiddenBiases: true).unbind(0);
        var weightHhTransposed = weightHh.t();
        var outputs = new Tensor[steps];
        Tensor h = h0, c = c0!;
        for (int t = 0; t < steps; t++)
        {
            var gates = AddHiddenTerm(inputTerms[t], h, weightHhTransposed, t).chunk(4, 1);
            var i = QuantizeActivation(0, SlopedSigmoid.Apply(gates[0], slopes.InputGate));
            var f = QuantizeActivation(1, SlopedSigmoid.Apply(gates[1], slopes.ForgetGate));
            var g = QuantizeActivation(2, SlopedTanh.Apply(gates[2], slopes.Candidate));
            var o = QuantizeActivation(3, SlopedSigmoid.Apply(gates[3], slopes.OutputGate));
            c = QuantizeActivation(5, (f * c).addcmul(i, g, Scalars.One));
            var cellOut = cellLayerNorm is null ? c : cellLayerNorm.forward(c);
            h = QuantizeActivation(4, o * SlopedTanh.Apply(cellOut, slopes.CellOutput));
            outputs[t] = h;
        }
        return (stack(outputs, 0), h, c);
    }
}
