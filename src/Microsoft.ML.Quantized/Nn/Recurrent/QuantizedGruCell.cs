using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized;

/// <summary>
/// One quantized GRU layer (PyTorch layout and convention, gate order r, z, n):
/// <code>
/// x~ = norm(Q(W_ih) x) + b_ih        h~ = norm(Q(W_hh) h) + b_hh      (each split into r, z, n blocks)
/// r = s((x~_r + h~_r) / l_r)   z = s((x~_z + h~_z) / l_z)   n = tanh((x~_n + r * h~_n) / l_n)
/// h' = (1 - z) * n + z * h
/// </code>
/// with HitNet slopes l_r = InputGate, l_z = ForgetGate, l_n = Candidate (<see cref="ActivationSlopes"/>) and
/// <c>norm</c> the in-cell normalization of the two products.
/// </summary>
/// <remarks>
/// The activation quantizer (HitNet) is applied to the gate outputs r, z, n and to the new hidden state h', as
/// <see cref="QuantizedRecurrentOptions.QuantizedActivations"/> selects (default both).
/// Quantizers registered: <c>reset_gate</c>, <c>update_gate</c>, <c>new_gate</c>, <c>hidden</c> (each
/// <c>_quantizer</c>).
/// <para>Where the fused kernel cannot run, or on a CPU with 512-bit vectors, where the loop is the faster
/// (<see cref="PrefersSequenceFunction"/>), the loop is <see cref="GruSequenceFunction"/> (one autograd operation with a
/// hand-written backward) unless an activation quantizer without a span form (<see cref="ISpanActivationQuantizer"/>; BTQ has
/// one) is in the step or the tensors are not float32/float64 on the CPU; then every step's operations are recorded for
/// autograd.</para>
/// </remarks>
internal sealed class QuantizedGruCell : QuantizedRecurrentCell
{
    private static readonly (string, RecurrentActivations)[] Activations =
    {
        ("reset_gate", RecurrentActivations.Gates), ("update_gate", RecurrentActivations.Gates), ("new_gate", RecurrentActivations.Gates),
        ("hidden", RecurrentActivations.Hidden),
    };
    private static readonly string[] GateNames = { "reset", "update", "candidate" };

    /// <summary>Creates the layer with quantizers from the options.</summary>
    public QuantizedGruCell(string name, int inputSize, QuantizedRecurrentOptions options)
        : this(name, inputSize, options,
            WeightQuantizers(options, PackedGruLayer.GateCount),
            () => QuantizerFactory.Create(options.ActivationQuantizer))
    {
    }

    /// <summary>Creates the layer with the given quantizer factories (one new instance per quantized tensor).</summary>
    public QuantizedGruCell(string name, int inputSize, QuantizedRecurrentOptions options, Func<Quantizer> weightQuantizer, Func<Quantizer> activationQuantizer)
        : base(name, 3, Activations, inputSize, options, weightQuantizer, activationQuantizer)
    {
    }

    /// <inheritdoc/>
    public override bool HasCellState => false;

    /// <inheritdoc/>
    public override IReadOnlyList<string> Gates => GateNames;

    /// <summary>
    /// True for float32 or float64 weights on the CPU where the managed products run (512-bit vectors,
    /// <see cref="StepProduct.Managed"/>): there <see cref="GruSequenceFunction"/> runs a forward and backward pass 2.3-3.1x as
    /// fast as libtorch's fused GRU at hidden 64-512 (docs/benchmarks.md, "One layer, cell loop vs fused kernel"), so
    /// weight-only GRUs run it too.
    /// </summary>
    protected override bool PrefersSequenceFunction => StepProduct.Managed && RunsSequenceFunction(WeightIh);

    /// <inheritdoc/>
    protected override (Tensor Output, Tensor H, Tensor? C) RunFused(Tensor input, Tensor h0, Tensor? c0, Tensor weightIh, Tensor weightHh)
    {
        var (output, h) = FusedRecurrentKernel.Gru(input, h0, weightIh, weightHh, BiasIh, BiasHh, training);
        return (output, h, null);
    }

    /// <inheritdoc/>
    protected override (Tensor Output, Tensor H, Tensor? C) RunLoop(Tensor input, Tensor h0, Tensor? c0, Tensor weightIh, Tensor weightHh)
    {
        if (RunsSequenceFunction(input))
        {
            var settings = new RecurrentSequenceSettings(Slopes, new SequenceNormalization(HiddenLayerNorm, HiddenBatchNorm, training), SpanActivationQuantizers()!);
            var gain = HiddenLayerNorm?.Gain ?? HiddenBatchNorm?.Gain;
            var (output, hT) = GruSequenceFunction.Run(InputTerms(input, weightIh, withHiddenBiases: false), weightHh, h0, gain, HiddenBias(),
                LearnedSteps(input.shape[1]), settings);
            return (output, hT, null);
        }
        var slopes = Slopes;
        int steps = (int)input.shape[0];
        long hidden = HiddenSize;
        var blocks = new[] { 2 * hidden, hidden }; // [r, z] and n
        var inputTerms = InputTerms(input, weightIh, withHiddenBiases: false).unbind(0);
        var weightHhTransposed = weightHh.t();
        var hiddenBias = HiddenBias();
        bool sharedGateSlope = slopes.InputGate == slopes.ForgetGate;
        var outputs = new Tensor[steps];
        Tensor h = h0;
        for (int t = 0; t < steps; t++)
        {
            var x = inputTerms[t].split(blocks, 1);
            var hh = HiddenTerm(h, weightHhTransposed, t, hiddenBias).split(blocks, 1);
            var preRz = x[0].add(hh[0], Scalars.One);
            Tensor r, z;
            if (sharedGateSlope)
            {
                // Both gates through one sigmoid when they share a slope.
                var rz = SlopedSigmoid.Apply(preRz, slopes.InputGate).chunk(2, 1);
                (r, z) = (rz[0], rz[1]);
            }
            else
            {
                var parts = preRz.chunk(2, 1);
                (r, z) = (SlopedSigmoid.Apply(parts[0], slopes.InputGate), SlopedSigmoid.Apply(parts[1], slopes.ForgetGate));
            }
            r = QuantizeActivation(0, r);
            z = QuantizeActivation(1, z);
            var n = QuantizeActivation(2, SlopedTanh.Apply(x[1].addcmul(r, hh[1], Scalars.One), slopes.Candidate));
            h = QuantizeActivation(3, n.addcmul(z, h - n, Scalars.One));
            outputs[t] = h;
        }
        return (stack(outputs, 0), h, null);
    }
}
