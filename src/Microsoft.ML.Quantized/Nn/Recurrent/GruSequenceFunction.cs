using System.Numerics;
using TorchSharp;
using static TorchSharp.torch;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace Microsoft.ML.Quantized;

/// <summary>
/// The GRU cell loop over a whole sequence as one autograd operation with a hand-written backward pass, built like
/// <see cref="LstmSequenceFunction"/>: <see cref="StepProduct{T}"/> computes each step's recurrent product, libtorch the
/// gradient of <c>W_hh</c> as one product over all steps; the normalization of the recurrent term (<see cref="SequenceStandardizer{T}"/>), the gates and
/// the state update and their derivatives (<see cref="GruStepMath"/>) run as vectorized managed code on the tensors' memory.
/// </summary>
/// <remarks>
/// Inputs: the input terms <c>X</c> [T, B, 3H] (<c>W_x x + b_ih</c>, normalized as the cell normalizes them), the effective
/// <c>W_hh</c> [3H, H], <c>h0</c> [B, H], the hidden normalization's gain [3H] (null without one) and the recurrent term's
/// bias [3H] (<c>b_hh</c> plus the hidden normalization's bias). Per step:
/// <code>
/// hh = bias + gain * norm(h W_hh^T)   (bias + h W_hh^T without a normalization)
/// r = Q(sigma((x_r + hh_r) / l_r))   z = Q(sigma((x_z + hh_z) / l_z))   n = Q(tanh((x_n + r hh_n) / l_n))   h' = Q_h(n + z (h - n))
/// </code>
/// with <c>Q</c> the activation quantizers' span forms (<see cref="ISpanActivationQuantizer"/>, the identity where there is
/// none), whose straight-through factors the backward pass applies.
/// The output is [T, B, H] (h of every step; the last is the final state). Equal to the autograd loop in outputs, running
/// statistics and every gradient (tests, float64 and float32).
/// </remarks>
internal sealed class GruSequenceFunction : RecurrentSequenceFunction<GruSequenceFunction>
{
    // The hidden state's index in RecurrentSequenceSettings.ActivationQuantizers after the gates r, z, n (0-2).
    private const int Hidden = 3;

    /// <inheritdoc/>
    public override string Name => "QuantizedGruSequence";

    /// <summary>
    /// Runs the sequence; returns the output [T, B, H] and the final h [B, H] (a view of the output's last step), in the
    /// caller's dispose scope. <paramref name="gain"/> is required with a normalization in <paramref name="settings"/> and
    /// ignored without one; <paramref name="learnedSteps"/> as in <see cref="LstmSequenceFunction.Run"/>.
    /// </summary>
    public static (Tensor Output, Tensor H) Run(Tensor inputTerms, Tensor weightHh, Tensor h0, Tensor? gain, Tensor hiddenBias, Tensor? learnedSteps,
        RecurrentSequenceSettings settings)
    {
        var output = apply(inputTerms, weightHh, h0, settings.Normalized ? gain! : null!, hiddenBias, learnedSteps!, settings)[0];
        return (output, output[inputTerms.shape[0] - 1]);
    }

    /// <inheritdoc/>
    protected override (Tensor Output, List<Tensor> Kept) Forward<T>(object[] vars, RecurrentSequenceSettings settings)
    {
        var (inputTerms, weightHh, h0, gain, hiddenBias, learnedSteps) = ((Tensor)vars[0], (Tensor)vars[1], (Tensor)vars[2], vars[3] as Tensor, (Tensor)vars[4], vars[5] as Tensor);
        var saved = ForwardSteps<T>(inputTerms, weightHh, h0, gain, hiddenBias, learnedSteps, settings);
        var output = saved.Hiddens.narrow(0, 1, inputTerms.shape[0]).clone();
        return (output, new List<Tensor>
        {
            weightHh, gain!, saved.Hiddens, saved.Gates, saved.Recurrent, saved.Standardized!, saved.InverseDeviations!,
            saved.QuantizedGates!, saved.GateFactors!, saved.HiddenFactors!, learnedSteps!, saved.GateStepFactors!, saved.HiddenStepFactors!,
        });
    }

    /// <inheritdoc/>
    protected override List<Tensor> Backward<T>(Tensor outputGradient, List<Tensor> saved, RecurrentSequenceSettings settings)
    {
        var state = new SavedState(saved[2], saved[3], saved[4], saved[5], saved[6], saved[7], saved[8], saved[9], saved[11], saved[12]);
        return BackwardSteps<T>(outputGradient, saved[0], saved[1], saved[10], state, settings);
    }

    /// <summary>
    /// What the forward pass keeps: h of every step [T + 1, B, H] (h0 first, each after its quantizer), the gate activations
    /// r, z, n [T, B, 3H], the recurrent terms hh [T, B, 3H], under a normalization the standardized products with their
    /// inverse deviations, and with activation quantizers the quantized gates [T, B, 3H] and the straight-through factors of
    /// the gates and of h' (null where nothing is quantized), with learned steps also their step factors (d q / d s).
    /// </summary>
    private sealed record SavedState(Tensor Hiddens, Tensor Gates, Tensor Recurrent, Tensor? Standardized, Tensor? InverseDeviations,
        Tensor? QuantizedGates, Tensor? GateFactors, Tensor? HiddenFactors, Tensor? GateStepFactors, Tensor? HiddenStepFactors);

    private static SavedState ForwardSteps<T>(Tensor inputTerms, Tensor weightHh, Tensor h0, Tensor? gain, Tensor hiddenBias, Tensor? learnedSteps,
        RecurrentSequenceSettings settings)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int steps = (int)inputTerms.shape[0], rows = (int)inputTerms.shape[1], hidden = (int)h0.shape[1], features = 3 * hidden;
        int stepSize = rows * features, stateSize = rows * hidden;
        var (dtype, device) = (inputTerms.dtype, inputTerms.device);
        var terms = inputTerms.contiguous();
        var hiddens = empty(steps + 1, rows, hidden, dtype: dtype, device: device);
        hiddens[0].copy_(h0);
        var gates = empty(steps, rows, features, dtype: dtype, device: device);
        var recurrent = empty(steps, rows, features, dtype: dtype, device: device);
        var standardizer = settings.Normalized ? new SequenceStandardizer<T>(settings.Normalization, steps, rows, features, dtype, device) : null;
        var gains = gain?.contiguous();
        var biases = hiddenBias.contiguous();
        var product = new StepProduct<T>(weightHh.t());
        var quantizers = settings.ActivationQuantizers;
        bool learnsSteps = learnedSteps is not null;
        var stepValues = StepValues<T>(learnedSteps, quantizers.Count);
        bool gatesQuantized = settings.Quantizes(0, 3);
        var quantizedGates = gatesQuantized ? empty(steps, rows, features, dtype: dtype, device: device) : null;
        var gateFactors = gatesQuantized ? empty(steps, rows, features, dtype: dtype, device: device) : null;
        var hiddenFactors = settings.Quantizes(Hidden) ? empty(steps, rows, hidden, dtype: dtype, device: device) : null;
        var gateStepFactors = learnsSteps && gatesQuantized ? empty(steps, rows, features, dtype: dtype, device: device) : null;
        var hiddenStepFactors = learnsSteps && hiddenFactors is not null ? empty(steps, rows, hidden, dtype: dtype, device: device) : null;
        var quantizerScratch = gatesQuantized ? new T[3 * stateSize] : null;

        var slopes = GateSlopes<T>(settings.Slopes);
        var qa = TensorSpans.OfOptional<T>(quantizedGates);
        var qf = TensorSpans.OfOptional<T>(gateFactors);
        var hf = TensorSpans.OfOptional<T>(hiddenFactors);
        var qs = TensorSpans.OfOptional<T>(gateStepFactors);
        var hs = TensorSpans.OfOptional<T>(hiddenStepFactors);
        var x = TensorSpans.Of<T>(terms);
        var h = TensorSpans.Of<T>(hiddens);
        var hh = TensorSpans.Of<T>(recurrent);
        var a = TensorSpans.Of<T>(gates);
        // Without activation quantizers everything in a step after its product goes row by row, so the rows are split over the
        // intra-op threads; a quantizer's random draws follow the autograd loop's order over whole tensors, so with any the
        // step runs on one thread.
        bool quantized = settings.Quantizes(0, 4);
        int rowParts = quantized ? 1 : RowParts(rows, features);
        for (int t = 0; t < steps; t++)
        {
            var hht = hh.Slice(t * stepSize, stepSize);
            product.Multiply(hiddens, t, standardizer is null ? hht : standardizer.Step(t));
            if (standardizer is { IsRowWise: false }) standardizer.Forward(t);
            if (!quantized)
            {
                int step = t;
                ForEachRowPart(rows, rowParts, (_, first, count) =>
                {
                    int gateAt = (step * rows + first) * features, gateSize = count * features;
                    var recurrentRows = TensorSpans.Of<T>(recurrent).Slice(gateAt, gateSize);
                    AddRecurrentTerm<T>(recurrentRows, TensorSpans.Of<T>(biases), 0, step, first, count, gains, standardizer);
                    var input = TensorSpans.Of<T>(terms).Slice(gateAt, gateSize);
                    var activations = TensorSpans.Of<T>(gates).Slice(gateAt, gateSize);
                    var states = TensorSpans.Of<T>(hiddens);
                    GruStepMath.ResetAndUpdate<T>(input, recurrentRows, activations, count, hidden, slopes);
                    GruStepMath.Candidate<T>(input, recurrentRows, activations, activations, count, hidden, slopes[2]);
                    GruStepMath.Mix<T>(activations, states.Slice((step * rows + first) * hidden, count * hidden),
                        states.Slice(((step + 1) * rows + first) * hidden, count * hidden), count, hidden);
                });
                continue;
            }
            AddRecurrentTerm<T>(hht, TensorSpans.Of<T>(biases), 0, t, 0, rows, gains, standardizer);
            // The quantizers in the autograd loop's order (its random draws): r, z, then n, then h'.
            var xt = x.Slice(t * stepSize, stepSize);
            var at = a.Slice(t * stepSize, stepSize);
            Span<T> q = at;
            GruStepMath.ResetAndUpdate<T>(xt, hht, at, rows, hidden, slopes);
            if (gatesQuantized)
            {
                q = qa.Slice(t * stepSize, stepSize);
                for (int k = 0; k < 2; k++)
                    QuantizeGate(quantizers[k], at, q, qf.Slice(t * stepSize, stepSize), StepOf(qs, t, stepSize), stepValues[k], rows, hidden, 3, k, quantizerScratch, dtype, device);
            }
            GruStepMath.Candidate<T>(xt, hht, q, at, rows, hidden, slopes[2]);
            if (gatesQuantized)
                QuantizeGate(quantizers[2], at, q, qf.Slice(t * stepSize, stepSize), StepOf(qs, t, stepSize), stepValues[2], rows, hidden, 3, 2, quantizerScratch, dtype, device);
            var newHidden = h.Slice((t + 1) * stateSize, stateSize);
            GruStepMath.Mix<T>(q, h.Slice(t * stateSize, stateSize), newHidden, rows, hidden);
            quantizers[Hidden]?.Quantize(newHidden, hf.Slice(t * stateSize, stateSize), StepOf(hs, t, stateSize), stepValues[Hidden], rows, hidden, dtype, device);
        }
        standardizer?.UpdateRunningStatistics();
        return new SavedState(hiddens, gates, recurrent, standardizer?.Standardized, standardizer?.InverseDeviations, quantizedGates, gateFactors, hiddenFactors,
            gateStepFactors, hiddenStepFactors);
    }

    private static List<Tensor> BackwardSteps<T>(Tensor outputGradient, Tensor weightHh, Tensor? gain, Tensor? learnedSteps, SavedState state, RecurrentSequenceSettings settings)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int steps = (int)state.Gates.shape[0], rows = (int)state.Gates.shape[1], hidden = (int)state.Hiddens.shape[2], features = 3 * hidden;
        int stepSize = rows * features, stateSize = rows * hidden;
        var (dtype, device) = (state.Gates.dtype, state.Gates.device);
        var outputs = outputGradient.contiguous();
        var hiddenGradient = zeros(rows, hidden, dtype: dtype, device: device);
        var inputGradients = empty(steps, rows, features, dtype: dtype, device: device);
        var recurrentGradients = empty(steps, rows, features, dtype: dtype, device: device);
        var standardizer = state.Standardized is null ? null : new SequenceStandardizer<T>(settings.Normalization, state.Standardized, state.InverseDeviations!);
        var productGradients = standardizer is null ? recurrentGradients : empty(steps, rows, features, dtype: dtype, device: device);
        var gains = gain?.contiguous();
        var gainGradient = standardizer is null ? null : zeros(features, dtype: dtype, device: device);
        var biasGradient = zeros(features, dtype: dtype, device: device);
        var product = new StepProduct<T>(weightHh);
        var throughWeights = new T[stateSize];

        var slopes = GateSlopes<T>(settings.Slopes);
        var scratch = new T[2 * features];
        var dh = TensorSpans.Of<T>(hiddenGradient);
        var dp = TensorSpans.Of<T>(productGradients);
        // A step's element-wise derivative goes row by row over the intra-op threads (RowParts), each part summing its own
        // gain, bias and learned-step gradients, added in order after the loop; batch norm's derivative spans the rows and
        // follows on one thread, then the step's product.
        int rowParts = RowParts(rows, features), stepCount = (int)(learnedSteps?.shape[0] ?? 0);
        var partScratch = Enumerable.Range(0, rowParts).Select(_ => new T[2 * features]).ToArray();
        var partSums = Enumerable.Range(0, rowParts).Select(_ => new T[2 * features + stepCount]).ToArray();
        for (int t = steps - 1; t >= 0; t--)
        {
            int step = t;
            ForEachRowPart(rows, rowParts, (part, first, count) =>
            {
                BackwardRows(step, first, count, outputs, hiddenGradient, inputGradients, recurrentGradients, productGradients, gains, state, standardizer,
                    slopes, partScratch[part], partSums[part]);
            });
            if (standardizer is { IsRowWise: false }) standardizer.Backward(dp.Slice(t * stepSize, stepSize), t, scratch);
            product.Multiply(productGradients, t, throughWeights);
            TensorPrimitives.Add(dh, throughWeights, dh);
        }
        var dg = TensorSpans.OfOptional<T>(gainGradient);
        var db = TensorSpans.Of<T>(biasGradient);
        var stepSums = new T[stepCount];
        foreach (var sums in partSums)
        {
            if (!dg.IsEmpty) TensorPrimitives.Add(dg, sums.AsSpan(0, features), dg);
            TensorPrimitives.Add(db, sums.AsSpan(features, features), db);
            TensorPrimitives.Add(stepSums, sums.AsSpan(2 * features, stepCount), stepSums);
        }
        var weightGradient = SequenceWeightGradient.Compute<T>(productGradients, state.Hiddens, steps * rows);
        return new List<Tensor> { inputGradients, weightGradient, hiddenGradient, gainGradient!, biasGradient, StepGradient(learnedSteps, stepSums)!, null! };
    }

    /// <summary>
    /// Rows <paramref name="first"/> .. + <paramref name="count"/> of step <paramref name="step"/>'s derivative: adds the
    /// output's gradient to <paramref name="hiddenGradient"/>, applies h''s quantizer (straight-through factors, its learned
    /// step's gradient), runs <see cref="GruStepMath.StepBackward"/> into the input and recurrent terms' gradients, and under a
    /// normalization writes the product's gradient (the gain times the recurrent term's, through the standardization under
    /// layer norm; batch norm's, which spans the rows, follows on one thread). <paramref name="sums"/> collects the gain's
    /// gradient [features], the bias's [features] and the learned steps'.
    /// </summary>
    private static void BackwardRows<T>(int step, int first, int count, Tensor outputGradient, Tensor hiddenGradient, Tensor inputGradients,
        Tensor recurrentGradients, Tensor productGradients, Tensor? gains, SavedState state, SequenceStandardizer<T>? standardizer, T[] slopes, T[] scratch,
        T[] sums) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int rows = (int)state.Gates.shape[1], hidden = (int)state.Hiddens.shape[2], features = 3 * hidden;
        int gateAt = (step * rows + first) * features, stateAt = (step * rows + first) * hidden, gateSize = count * features, stateSize = count * hidden;
        var dh = TensorSpans.Of<T>(hiddenGradient).Slice(first * hidden, stateSize);
        TensorPrimitives.Add(dh, TensorSpans.Of<T>(outputGradient).Slice(stateAt, stateSize), dh);
        var stepSums = sums.AsSpan(2 * features);
        var hiddenStepFactors = Rows<T>(state.HiddenStepFactors, stateAt, stateSize);
        if (!hiddenStepFactors.IsEmpty) stepSums[Hidden] += TensorPrimitives.Dot<T>(dh, hiddenStepFactors);
        var hiddenFactors = Rows<T>(state.HiddenFactors, stateAt, stateSize);
        if (!hiddenFactors.IsEmpty) TensorPrimitives.Multiply(dh, hiddenFactors, dh);
        var gates = TensorSpans.Of<T>(state.Gates).Slice(gateAt, gateSize);
        var dhh = TensorSpans.Of<T>(recurrentGradients).Slice(gateAt, gateSize);
        GruStepMath.StepBackward<T>(dh, gates, state.QuantizedGates is null ? gates : Rows<T>(state.QuantizedGates, gateAt, gateSize),
            Rows<T>(state.GateFactors, gateAt, gateSize), TensorSpans.Of<T>(state.Recurrent).Slice(gateAt, gateSize),
            TensorSpans.Of<T>(state.Hiddens).Slice(stateAt, stateSize), TensorSpans.Of<T>(inputGradients).Slice(gateAt, gateSize), dhh, scratch, count, hidden,
            slopes, Rows<T>(state.GateStepFactors, gateAt, gateSize), stepSums);
        var db = sums.AsSpan(features, features);
        for (int r = 0; r < count; r++) TensorPrimitives.Add(dhh.Slice(r * features, features), db, db);
        if (standardizer is not null)
            NormalizationBackwardRows<T>(dhh, TensorSpans.Of<T>(productGradients).Slice(gateAt, gateSize), step, first, count, gains!, standardizer,
                sums.AsSpan(0, features), scratch);
    }

    /// <summary>The gate slopes in the weight rows' order r, z, n (the cell's InputGate, ForgetGate and Candidate slopes).</summary>
    private static T[] GateSlopes<T>(ActivationSlopes slopes) where T : unmanaged, IFloatingPointIeee754<T> =>
        new[] { slopes.InputGate, slopes.ForgetGate, slopes.Candidate }.Select(T.CreateChecked).ToArray();
}
