using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized;

/// <summary>
/// What LSTM and GRU layers share: PyTorch-layout parameters (<c>weight_ih</c> [G*H, in], <c>weight_hh</c>
/// [G*H, H], <c>bias_ih</c>, <c>bias_hh</c> [G*H], uniform(-1/sqrt(H), 1/sqrt(H)) like PyTorch), one weight
/// quantizer per weight matrix, the in-cell normalization, the activation quantizers and the choice between
/// the fused kernel and the cell loop.
/// </summary>
/// <remarks>
/// <para>Each forward quantizes <c>weight_ih</c> and <c>weight_hh</c> once for the whole sequence, never per
/// step. With <see cref="RecurrentNormalization.Weight"/> the quantized matrices are then row-normalized
/// (<see cref="WeightNorm"/>).</para>
/// <para>The fused kernel runs when nothing happens inside a step that libtorch's kernel lacks: normalization
/// None or Weight (both only change the weight matrices), identity activation quantizers and all slopes 1, unless the
/// cell's sequence function is the faster there (<see cref="PrefersSequenceFunction"/>: the GRU on a CPU with 512-bit
/// vectors). Everything else runs the cell loop, which computes the input products of all steps in one matrix product
/// and loops over time for the recurrent part.</para>
/// </remarks>
internal abstract class QuantizedRecurrentCell : nn.Module
{
    // The weights and biases are looked up by their registered names, never held in fields: Module.to() replaces a converted
    // parameter in the registry and in a field only of the same name, so a field of another name would keep the disposed one.
    private const string WeightIhName = "weight_ih", WeightHhName = "weight_hh", BiasIhName = "bias_ih", BiasHhName = "bias_hh";
    private readonly Quantizer weightIhQuantizer;
    private readonly Quantizer weightHhQuantizer;
    private readonly WeightNorm? weightIhNorm;
    private readonly WeightNorm? weightHhNorm;
    private readonly RecurrentLayerNorm? inputLayerNorm;
    private readonly RecurrentLayerNorm? hiddenLayerNorm;
    private readonly RecurrentBatchNorm? inputBatchNorm;
    private readonly RecurrentBatchNorm? hiddenBatchNorm;
    private readonly Quantizer[] activationQuantizers;
    private readonly bool activationsQuantized;

    /// <summary>The gate blocks a layer's weight matrices stack: 4 (i, f, g, o) for the LSTM, 3 (r, z, n) for the GRU.</summary>
    public static int GateCount(RecurrentCellKind cell) => cell == RecurrentCellKind.Lstm ? PackedLstmLayer.GateCount : PackedGruLayer.GateCount;

    /// <summary>
    /// Creates one weight quantizer per call from <see cref="QuantizedRecurrentOptions.WeightQuantizer"/>, for a matrix of
    /// <paramref name="gates"/> blocks of <see cref="QuantizedRecurrentOptions.HiddenSize"/> rows (the row count for per-row
    /// state, the blocks for per-gate scales).
    /// </summary>
    internal static Func<Quantizer> WeightQuantizers(QuantizedRecurrentOptions options, int gates) =>
        () => QuantizerFactory.Create(options.WeightQuantizer, rows: (long)gates * options.HiddenSize, gates);

    /// <param name="name">Module name.</param>
    /// <param name="gates">Gate blocks G (4 for LSTM, 3 for GRU).</param>
    /// <param name="activations">
    /// One name per quantizable activation (registered as <c>{name}_quantizer</c>) and the kind it is: an activation whose kind
    /// <see cref="QuantizedRecurrentOptions.QuantizedActivations"/> does not name gets the identity.
    /// </param>
    /// <param name="inputSize">Input features.</param>
    /// <param name="options">Hidden size, normalization, slopes.</param>
    /// <param name="weightQuantizer">Creates one weight quantizer per weight matrix.</param>
    /// <param name="activationQuantizer">Creates one activation quantizer per quantized activation.</param>
    protected QuantizedRecurrentCell(
        string name, int gates, IReadOnlyList<(string Name, RecurrentActivations Kind)> activations, int inputSize, QuantizedRecurrentOptions options,
        Func<Quantizer> weightQuantizer, Func<Quantizer> activationQuantizer)
        : base(name)
    {
        InputSize = inputSize;
        HiddenSize = options.HiddenSize;
        Normalization = options.Normalization;
        LayerNormForm = options.LayerNormForm;
        Slopes = options.Slopes.Clone();
        long rows = (long)gates * HiddenSize;
        double bound = 1.0 / Math.Sqrt(HiddenSize);

        Parameter weightIh, weightHh;
        using (no_grad())
        {
            var generator = TrainingRandom.For(CPU);
            weightIh = new Parameter(empty(rows, inputSize).uniform_(-bound, bound, generator: generator));
            weightHh = new Parameter(empty(rows, HiddenSize).uniform_(-bound, bound, generator: generator));
            register_parameter(WeightIhName, weightIh);
            register_parameter(WeightHhName, weightHh);
            register_parameter(BiasIhName, new Parameter(empty(rows).uniform_(-bound, bound, generator: generator)));
            register_parameter(BiasHhName, new Parameter(empty(rows).uniform_(-bound, bound, generator: generator)));
        }

        weightIhQuantizer = weightQuantizer();
        weightHhQuantizer = weightQuantizer();
        register_module("weight_ih_quantizer", weightIhQuantizer);
        register_module("weight_hh_quantizer", weightHhQuantizer);

        switch (Normalization)
        {
            case RecurrentNormalization.None:
                break;
            case RecurrentNormalization.Weight:
                weightIhNorm = new WeightNorm("weight_ih_norm", weightIh);
                weightHhNorm = new WeightNorm("weight_hh_norm", weightHh);
                register_module("weight_ih_norm", weightIhNorm);
                register_module("weight_hh_norm", weightHhNorm);
                break;
            case RecurrentNormalization.Layer:
                int groups = LayerNormForm == LayerNormForm.PerGate ? gates : 1;
                inputLayerNorm = new RecurrentLayerNorm("input_norm", rows, groups);
                hiddenLayerNorm = new RecurrentLayerNorm("hidden_norm", rows, groups);
                register_module("input_norm", inputLayerNorm);
                register_module("hidden_norm", hiddenLayerNorm);
                break;
            case RecurrentNormalization.BatchShared:
            case RecurrentNormalization.BatchPerStep:
                int steps = Normalization == RecurrentNormalization.BatchShared ? 1 : options.MaxNormalizedSteps;
                inputBatchNorm = new RecurrentBatchNorm("input_norm", rows, steps);
                hiddenBatchNorm = new RecurrentBatchNorm("hidden_norm", rows, steps);
                register_module("input_norm", inputBatchNorm);
                register_module("hidden_norm", hiddenBatchNorm);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(options), Normalization, $"Unknown QuantizedRecurrentOptions.Normalization {Normalization}.");
        }

        activationQuantizers = new Quantizer[activations.Count];
        for (int k = 0; k < activations.Count; k++)
        {
            activationQuantizers[k] = options.QuantizedActivations.HasFlag(activations[k].Kind) ? activationQuantizer() : new IdentityQuantizer();
            register_module(activations[k].Name + "_quantizer", activationQuantizers[k]);
        }
        activationsQuantized = activationQuantizers.Any(q => !q.IsIdentity);
    }

    /// <summary>Input features.</summary>
    public int InputSize { get; }

    /// <summary>Hidden units.</summary>
    public int HiddenSize { get; }

    /// <summary>In-cell normalization.</summary>
    public RecurrentNormalization Normalization { get; }

    /// <summary>Per-gate or joint layer normalization (read under <see cref="RecurrentNormalization.Layer"/> only).</summary>
    public LayerNormForm LayerNormForm { get; }

    /// <summary>Activation slopes (a copy of the options').</summary>
    public ActivationSlopes Slopes { get; }

    /// <summary>Float shadow weight [G*H, in].</summary>
    public Parameter WeightIh => get_parameter(WeightIhName)!;

    /// <summary>Float shadow weight [G*H, H].</summary>
    public Parameter WeightHh => get_parameter(WeightHhName)!;

    /// <summary>Input bias [G*H].</summary>
    public Parameter BiasIh => get_parameter(BiasIhName)!;

    /// <summary>Hidden bias [G*H].</summary>
    public Parameter BiasHh => get_parameter(BiasHhName)!;

    /// <summary>Quantizer of <see cref="WeightIh"/>.</summary>
    public Quantizer WeightIhQuantizer => weightIhQuantizer;

    /// <summary>Quantizer of <see cref="WeightHh"/>.</summary>
    public Quantizer WeightHhQuantizer => weightHhQuantizer;

    /// <summary>Row normalization of the quantized <see cref="WeightIh"/> (Weight normalization only).</summary>
    public WeightNorm? WeightIhNorm => weightIhNorm;

    /// <summary>Row normalization of the quantized <see cref="WeightHh"/> (Weight normalization only).</summary>
    public WeightNorm? WeightHhNorm => weightHhNorm;

    /// <summary>Layer normalization of W_x x, per gate or joint (Layer normalization only).</summary>
    public RecurrentLayerNorm? InputLayerNorm => inputLayerNorm;

    /// <summary>Layer normalization of W_h h, per gate or joint (Layer normalization only).</summary>
    public RecurrentLayerNorm? HiddenLayerNorm => hiddenLayerNorm;

    /// <summary>Batch normalization of W_x x (batch normalizations only).</summary>
    public RecurrentBatchNorm? InputBatchNorm => inputBatchNorm;

    /// <summary>Batch normalization of W_h h (batch normalizations only).</summary>
    public RecurrentBatchNorm? HiddenBatchNorm => hiddenBatchNorm;

    /// <summary>The activation quantizers, in the order given to the constructor (the identity for those not quantized).</summary>
    public IReadOnlyList<Quantizer> ActivationQuantizers => activationQuantizers;

    /// <summary>Testing switch: run the cell loop even where the fused kernel could run.</summary>
    internal bool ForceCellLoop { get; set; }

    /// <summary>
    /// Testing and benchmark switch: run libtorch's fused kernel wherever it can run, also where the cell would run its
    /// sequence function instead (<see cref="PrefersSequenceFunction"/>).
    /// </summary>
    internal bool ForceFusedKernel { get; set; }

    /// <summary>
    /// Testing switch: in the cell loop, record every step's operations for autograd even where a hand-written sequence
    /// function (<see cref="LstmSequenceFunction"/>, <see cref="GruSequenceFunction"/>) could run; the reference they are
    /// tested against.
    /// </summary>
    internal bool ForceAutogradLoop { get; set; }

    /// <summary>
    /// Diagnostics hook (KURE gate statistics): when set, called after each forward with this cell, the input, h0, c0
    /// and the output, inside the forward's dispose scope (what it creates dies with it). Null (default) = nothing.
    /// </summary>
    internal Action<QuantizedRecurrentCell, Tensor, Tensor, Tensor?, Tensor>? ForwardObserver { get; set; }

    /// <summary>True when forward runs the fused libtorch kernel.</summary>
    public bool UsesFusedKernel => !ForceCellLoop
        && (Normalization == RecurrentNormalization.None || Normalization == RecurrentNormalization.Weight)
        && !activationsQuantized
        && Slopes.AreStandard
        && (ForceFusedKernel || !PrefersSequenceFunction);

    /// <summary>
    /// True where the cell's hand-written sequence function trains faster than libtorch's fused kernel, so that it runs for
    /// weight-only quantization too. False here (the LSTM's fused kernel is the faster); the GRU overrides it.
    /// </summary>
    protected virtual bool PrefersSequenceFunction => false;

    /// <summary>True for the LSTM (it carries a cell state).</summary>
    public abstract bool HasCellState { get; }

    /// <summary>
    /// The gate blocks of <see cref="WeightIh"/> and <see cref="WeightHh"/> in row order, <see cref="HiddenSize"/> rows each:
    /// input, forget, candidate, output (LSTM); reset, update, candidate (GRU).
    /// </summary>
    public abstract IReadOnlyList<string> Gates { get; }

    /// <summary>
    /// Runs the layer over <paramref name="input"/> [time, batch, in] from <paramref name="h0"/> (and, for the
    /// LSTM, <paramref name="c0"/>) [batch, hidden]. Returns output [time, batch, hidden] and the final h and c
    /// (c null for the GRU), all moved to the caller's dispose scope.
    /// </summary>
    public (Tensor Output, Tensor H, Tensor? C) Forward(Tensor input, Tensor h0, Tensor? c0)
    {
        CheckShapes(input, h0, c0);
        if (training && (inputBatchNorm is not null) && input.shape[1] < 2)
            throw new InvalidOperationException(
                $"QuantizedRecurrentOptions.Normalization = {Normalization} needs at least 2 sequences per batch in training; got a batch of {input.shape[1]}. " +
                "Use a batch size of 2 or more, Normalization = Layer or Weight, or evaluation mode.");

        using var scope = NewDisposeScope();
        var (wih, whh) = EffectiveWeights();
        var (output, h, c) = UsesFusedKernel
            ? RunFused(input, h0, c0, wih, whh)
            : RunLoop(input, h0, c0, wih, whh);
        ForwardObserver?.Invoke(this, input, h0, c0, output);
        output.MoveToOuterDisposeScope();
        h.MoveToOuterDisposeScope();
        c?.MoveToOuterDisposeScope();
        return (output, h, c);
    }

    /// <summary>
    /// The weights the step uses: each float weight through its quantizer (once per sequence), then the row
    /// normalization under <see cref="RecurrentNormalization.Weight"/>. Results belong to the current scope.
    /// </summary>
    internal (Tensor WeightIh, Tensor WeightHh) EffectiveWeights()
    {
        var wih = weightIhQuantizer.forward(WeightIh);
        var whh = weightHhQuantizer.forward(WeightHh);
        if (weightIhNorm is not null) wih = weightIhNorm.forward(wih);
        if (weightHhNorm is not null) whh = weightHhNorm.forward(whh);
        return (wih, whh);
    }

    /// <summary>The fused kernel with the effective weights.</summary>
    protected abstract (Tensor Output, Tensor H, Tensor? C) RunFused(Tensor input, Tensor h0, Tensor? c0, Tensor weightIh, Tensor weightHh);

    /// <summary>The cell loop over time with the effective weights.</summary>
    protected abstract (Tensor Output, Tensor H, Tensor? C) RunLoop(Tensor input, Tensor h0, Tensor? c0, Tensor weightIh, Tensor weightHh);

    /// <summary>
    /// The input term of every step, [time, batch, G*H]: <c>W_x x + b_ih</c>, <c>LN(W_x x) + b_ih</c> (per gate
    /// or joint) or <c>BN_t(W_x x) + b_ih</c>, computed for all steps at once (one matrix product, one normalization). With
    /// <paramref name="withHiddenBiases"/> it also holds <c>b_hh</c> and the hidden-side normalization's bias, added once for
    /// the sequence instead of once per step, for <see cref="AddHiddenTerm"/>. Where the cell runs its sequence function all of it
    /// is one operation, <see cref="InputTermsFunction"/>; the autograd loop keeps libtorch's operations.
    /// </summary>
    /// <remarks>
    /// A loop splits the steps with one <c>unbind</c>, never indexing them one by one: autograd turns each
    /// <c>terms[t]</c> into a full-size [time, batch, G*H] gradient in the backward pass (time squared memory traffic),
    /// where <c>unbind</c>'s backward stacks the step gradients once.
    /// </remarks>
    protected Tensor InputTerms(Tensor input, Tensor weightIh, bool withHiddenBiases)
    {
        Tensor bias = BiasIh;
        if (withHiddenBiases)
        {
            bias = bias.add(BiasHh, Scalars.One);
            Tensor? hiddenNormBias = hiddenLayerNorm?.Bias ?? hiddenBatchNorm?.Bias;
            if (hiddenNormBias is not null) bias = bias.add(hiddenNormBias, Scalars.One);
        }
        if (RunsSequenceFunction(input))
        {
            var normalization = new SequenceNormalization(inputLayerNorm, inputBatchNorm, training);
            var termBias = normalization.Normalized ? bias.add(inputLayerNorm?.Bias ?? inputBatchNorm!.Bias, Scalars.One) : bias;
            return InputTermsFunction.Run(input, weightIh, inputLayerNorm?.Gain ?? inputBatchNorm?.Gain, termBias, normalization);
        }
        var projected = inputLayerNorm is not null ? inputLayerNorm.forward(input.matmul(weightIh.t())).add(bias, Scalars.One)
            : inputBatchNorm is not null ? inputBatchNorm.ForwardSteps(input.matmul(weightIh.t())).add(bias, Scalars.One)
            : nn.functional.linear(input, weightIh, bias);
        return projected;
    }

    /// <summary>
    /// <paramref name="inputTerm"/> (from <see cref="InputTerms"/> with the hidden biases) plus the recurrent term of step
    /// <paramref name="step"/>, <c>norm(W_h h)</c> without its bias: one fused operation after the product and the
    /// standardization (<c>addmm</c>, or <c>addcmul</c> with the normalization's gain). <paramref name="weightHhTransposed"/>
    /// is <c>W_hh^T</c> [H, G*H], transposed once per sequence.
    /// </summary>
    protected Tensor AddHiddenTerm(Tensor inputTerm, Tensor h, Tensor weightHhTransposed, int step)
    {
        if (hiddenLayerNorm is not null) return inputTerm.addcmul(hiddenLayerNorm.Standardize(h.matmul(weightHhTransposed)), hiddenLayerNorm.Gain, Scalars.One);
        if (hiddenBatchNorm is not null) return inputTerm.addcmul(hiddenBatchNorm.Standardize(h.matmul(weightHhTransposed), step), hiddenBatchNorm.Gain, Scalars.One);
        return inputTerm.addmm(h, weightHhTransposed);
    }

    /// <summary>
    /// The bias of the recurrent term, <c>b_hh</c> plus the hidden-side normalization's bias: computed once per sequence for
    /// <see cref="HiddenTerm"/>.
    /// </summary>
    protected Tensor HiddenBias()
    {
        Tensor? normBias = hiddenLayerNorm?.Bias ?? hiddenBatchNorm?.Bias;
        return normBias is null ? BiasHh : BiasHh.add(normBias, Scalars.One);
    }

    /// <summary>
    /// The recurrent term of step <paramref name="step"/> on its own, <c>norm(W_h h) + b_hh</c> [batch, G*H], for a cell that
    /// does more with it than add it to the input term: one fused operation after the product and the standardization
    /// (<c>addmm</c>, or <c>addcmul</c> with the normalization's gain) on <paramref name="hiddenBias"/> from
    /// <see cref="HiddenBias"/>. <paramref name="weightHhTransposed"/> is <c>W_hh^T</c>, transposed once per sequence.
    /// </summary>
    protected Tensor HiddenTerm(Tensor h, Tensor weightHhTransposed, int step, Tensor hiddenBias)
    {
        if (hiddenLayerNorm is not null) return hiddenBias.addcmul(hiddenLayerNorm.Standardize(h.matmul(weightHhTransposed)), hiddenLayerNorm.Gain, Scalars.One);
        if (hiddenBatchNorm is not null) return hiddenBias.addcmul(hiddenBatchNorm.Standardize(h.matmul(weightHhTransposed), step), hiddenBatchNorm.Gain, Scalars.One);
        return hiddenBias.addmm(h, weightHhTransposed);
    }

    /// <summary>
    /// True when the cell loop over <paramref name="input"/> runs the cell's hand-written sequence function: float32 or float64
    /// on the CPU, every activation quantizer the identity or with a span form, and not <see cref="ForceAutogradLoop"/>.
    /// </summary>
    internal virtual bool RunsSequenceFunction(Tensor input) => !ForceAutogradLoop && TensorSpans.Supports(input) && SpanActivationQuantizers() is not null;

    /// <summary>
    /// The activation quantizers' span forms for a sequence function, in their order (null for the identity); null when one
    /// of them has no span form (<see cref="ISpanActivationQuantizer"/>), and the autograd loop has to run.
    /// </summary>
    protected ISpanActivationQuantizer?[]? SpanActivationQuantizers()
    {
        var result = new ISpanActivationQuantizer?[activationQuantizers.Length];
        for (int k = 0; k < result.Length; k++)
        {
            if (activationQuantizers[k].IsIdentity) continue;
            if (activationQuantizers[k].SpanForm is not { } span) return null;
            result[k] = span;
        }
        return result;
    }

    /// <summary>
    /// The activation quantizers' learned steps for a sequence function over batches of <paramref name="rows"/> rows, float32
    /// [activations] (0 where a quantizer learns none), whose gradient reaches each step parameter; null when none learns one.
    /// </summary>
    protected Tensor? LearnedSteps(long rows)
    {
        var steps = activationQuantizers.Select(q => q.IsIdentity ? null : q.SpanForm?.StepInput(rows * HiddenSize)).ToArray();
        if (steps.All(s => s is null)) return null;
        using var scope = NewDisposeScope();
        return cat(steps.Select(s => s ?? zeros(1, ScalarType.Float32, device: WeightHh.device)).ToArray(), 0).MoveToOuterDisposeScope();
    }

    /// <summary>Activation <paramref name="index"/> through its quantizer (skipped when it is the identity).</summary>
    protected Tensor QuantizeActivation(int index, Tensor x)
        => activationQuantizers[index].IsIdentity ? x : activationQuantizers[index].forward(x);


    private void CheckShapes(Tensor input, Tensor h0, Tensor? c0)
    {
        if (input.dim() != 3 || input.shape[2] != InputSize || input.shape[0] < 1)
            throw new ArgumentException(
                $"Recurrent input must be [time >= 1, batch, {InputSize}] (time-major); got [{string.Join(", ", input.shape)}].", nameof(input));
        long batch = input.shape[1];
        if (h0.dim() != 2 || h0.shape[0] != batch || h0.shape[1] != HiddenSize)
            throw new ArgumentException($"Hidden state must be [{batch}, {HiddenSize}]; got [{string.Join(", ", h0.shape)}].", nameof(h0));
        if (HasCellState && (c0 is null || c0.dim() != 2 || c0.shape[0] != batch || c0.shape[1] != HiddenSize))
            throw new ArgumentException(
                $"LSTM cell state must be [{batch}, {HiddenSize}]; got {(c0 is null ? "none" : "[" + string.Join(", ", c0.shape) + "]")}.", nameof(c0));
    }
}
