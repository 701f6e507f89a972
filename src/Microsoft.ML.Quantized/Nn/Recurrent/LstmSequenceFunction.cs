using System.Numerics;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized;

/// <summary>
/// The LSTM cell loop over a whole sequence as one autograd operation with a hand-written backward pass:
/// <see cref="StepProduct{T}"/> computes each step's recurrent matrix product (<c>h W_hh^T</c> forward, <c>dz W_hh</c>
/// backward), libtorch the gradient of <c>W_hh</c> as one product over all steps; everything element-wise in a step
/// (normalization of the recurrent term, gate activations, cell update and their derivatives) runs as vectorized managed
/// code (<see cref="SequenceStandardizer{T}"/>, <see cref="LstmStepMath"/>) on the tensors' own memory, with no graph
/// recorded per step.
/// </summary>
/// <remarks>
/// <para>Inputs: the input terms of every step <c>X</c> [T, B, 4H] (<see cref="QuantizedRecurrentCell"/>'s input term with
/// <c>b_ih</c>, <c>b_hh</c> and the hidden normalization's bias folded in), the effective recurrent weight <c>W_hh</c>
/// [4H, H], <c>h0</c>, <c>c0</c> [B, H] and the hidden normalization's gain [4H] (null without one). Per step:
/// <code>
/// z = X_t + gain * norm(h W_hh^T)   (X_t + h W_hh^T without a normalization)
/// i, f, o = Q(sigma(z / l))   g = Q(tanh(z / l_g))   c' = Q_c(f c + i g)   h' = Q_h(o tanh(c' / l_c))
/// </code>
/// with <c>norm</c> the per-group layer normalization or the recurrent batch normalization of the step (batch statistics
/// in training, whose running averages it updates as the autograd loop does; running statistics in evaluation) and
/// <c>Q</c> the activation quantizers' span forms (<see cref="ISpanActivationQuantizer"/>, the identity where there is
/// none), whose straight-through factors the backward pass applies.</para>
/// <para>It computes the same function as the autograd loop (<see cref="QuantizedRecurrentCell.ForceAutogradLoop"/>; the
/// tests compare outputs, running statistics and every gradient in float64 and float32). The gain is speed: the autograd loop records
/// and replays a dozen small libtorch operations per step, each with its graph node and dispatch; here a step is one
/// matrix product each way plus managed loops over the rows. Float32 and float64 on the CPU
/// (<see cref="TensorSpans.Supports"/>).</para>
/// </remarks>
internal sealed class LstmSequenceFunction : RecurrentSequenceFunction<LstmSequenceFunction>
{
    // The activation quantizers' indices in RecurrentSequenceSettings.ActivationQuantizers after the gates i, f, g, o (0-3).
    private const int Hidden = 4, CellState = 5;

    /// <inheritdoc/>
    public override string Name => "QuantizedLstmSequence";

    /// <summary>
    /// Runs the sequence; returns the output [T, B, H] and the final h and c [B, H], in the caller's dispose scope.
    /// <paramref name="gain"/> is required with a normalization in <paramref name="settings"/> and ignored without one;
    /// <paramref name="learnedSteps"/> holds the activation quantizers' learned steps in their order (0 where none; see
    /// <see cref="ISpanActivationQuantizer.StepInput"/>), null when none learns its step.
    /// </summary>
    /// <remarks>The operation's one output is [T + 1, B, H]: h of every step, then the final c; the results are views of it.</remarks>
    public static (Tensor Output, Tensor H, Tensor C) Run(Tensor inputTerms, Tensor weightHh, Tensor h0, Tensor c0, Tensor? gain, Tensor? learnedSteps,
        RecurrentSequenceSettings settings)
    {
        var states = apply(inputTerms, weightHh, h0, c0, settings.Normalized ? gain! : null!, learnedSteps!, settings)[0];
        long steps = inputTerms.shape[0];
        return (states.narrow(0, 0, steps), states[steps - 1], states[steps]);
    }

    /// <inheritdoc/>
    protected override (Tensor Output, List<Tensor> Kept) Forward<T>(object[] vars, RecurrentSequenceSettings settings)
    {
        var (inputTerms, weightHh, h0, c0, gain, learnedSteps) = ((Tensor)vars[0], (Tensor)vars[1], (Tensor)vars[2], (Tensor)vars[3], vars[4] as Tensor, vars[5] as Tensor);
        var saved = ForwardSteps<T>(inputTerms, weightHh, h0, c0, gain, learnedSteps, settings);
        long steps = inputTerms.shape[0];
        var states = cat(new[] { saved.Hiddens.narrow(0, 1, steps), saved.Cells.narrow(0, steps, 1) }, 0);
        return (states, new List<Tensor>
        {
            weightHh, gain!, saved.Hiddens, saved.Cells, saved.Gates, saved.CellTanhs, saved.Standardized!, saved.InverseDeviations!,
            saved.QuantizedGates!, saved.GateFactors!, saved.CellFactors!, saved.HiddenFactors!,
            learnedSteps!, saved.GateStepFactors!, saved.CellStepFactors!, saved.HiddenStepFactors!,
        });
    }

    /// <inheritdoc/>
    protected override List<Tensor> Backward<T>(Tensor outputGradient, List<Tensor> saved, RecurrentSequenceSettings settings)
    {
        var state = new SavedState(saved[2], saved[3], saved[4], saved[5], saved[6], saved[7], saved[8], saved[9], saved[10], saved[11],
            saved[13], saved[14], saved[15]);
        return BackwardSteps<T>(outputGradient, saved[0], saved[1], saved[12], state, settings);
    }

    /// <summary>
    /// What the forward pass keeps for the backward pass: h and c of every step [T + 1, B, H] (h0 and c0 first, each after its
    /// quantizer), the gate activations [T, B, 4H], <c>tanh(c' / l_c)</c> [T, B, H], under a normalization the standardized
    /// recurrent terms [T, B, 4H] with their inverse deviations (per row and group, per step and feature, or the running ones
    /// per set), and with activation quantizers the quantized gates [T, B, 4H] and the straight-through factors of the gates,
    /// c' and h' (null where nothing is quantized), with learned steps also their step factors (d q / d s).
    /// </summary>
    private sealed record SavedState(Tensor Hiddens, Tensor Cells, Tensor Gates, Tensor CellTanhs, Tensor? Standardized, Tensor? InverseDeviations,
        Tensor? QuantizedGates, Tensor? GateFactors, Tensor? CellFactors, Tensor? HiddenFactors,
        Tensor? GateStepFactors, Tensor? CellStepFactors, Tensor? HiddenStepFactors);

    private static SavedState ForwardSteps<T>(Tensor inputTerms, Tensor weightHh, Tensor h0, Tensor c0, Tensor? gain, Tensor? learnedSteps, RecurrentSequenceSettings settings)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int steps = (int)inputTerms.shape[0], rows = (int)inputTerms.shape[1], hidden = (int)h0.shape[1], features = 4 * hidden;
        int stepSize = rows * features, stateSize = rows * hidden;
        var (dtype, device) = (inputTerms.dtype, inputTerms.device);
        var terms = inputTerms.contiguous();
        var hiddens = empty(steps + 1, rows, hidden, dtype: dtype, device: device);
        var cells = empty(steps + 1, rows, hidden, dtype: dtype, device: device);
        hiddens[0].copy_(h0);
        cells[0].copy_(c0);
        var gates = empty(steps, rows, features, dtype: dtype, device: device);
        var cellTanhs = empty(steps, rows, hidden, dtype: dtype, device: device);
        var standardizer = settings.Normalized ? new SequenceStandardizer<T>(settings.Normalization, steps, rows, features, dtype, device) : null;
        var gains = gain?.contiguous();
        var product = new StepProduct<T>(weightHh.t());
        var quantizers = settings.ActivationQuantizers;
        bool learnsSteps = learnedSteps is not null;
        var stepValues = StepValues<T>(learnedSteps, quantizers.Count);
        bool gatesQuantized = settings.Quantizes(0, 4);
        var quantizedGates = gatesQuantized ? empty(steps, rows, features, dtype: dtype, device: device) : null;
        var gateFactors = gatesQuantized ? empty(steps, rows, features, dtype: dtype, device: device) : null;
        var cellFactors = settings.Quantizes(CellState) ? empty(steps, rows, hidden, dtype: dtype, device: device) : null;
        var hiddenFactors = settings.Quantizes(Hidden) ? empty(steps, rows, hidden, dtype: dtype, device: device) : null;
        var gateStepFactors = learnsSteps && gatesQuantized ? empty(steps, rows, features, dtype: dtype, device: device) : null;
        var cellStepFactors = learnsSteps && cellFactors is not null ? empty(steps, rows, hidden, dtype: dtype, device: device) : null;
        var hiddenStepFactors = learnsSteps && hiddenFactors is not null ? empty(steps, rows, hidden, dtype: dtype, device: device) : null;
        var quantizerScratch = gatesQuantized ? new T[3 * stateSize] : null;

        var slopes = GateSlopes<T>(settings.Slopes);
        T cellSlope = T.CreateChecked(settings.Slopes.CellOutput);
        var qa = TensorSpans.OfOptional<T>(quantizedGates);
        var qf = TensorSpans.OfOptional<T>(gateFactors);
        var cf = TensorSpans.OfOptional<T>(cellFactors);
        var hf = TensorSpans.OfOptional<T>(hiddenFactors);
        var qs = TensorSpans.OfOptional<T>(gateStepFactors);
        var cs = TensorSpans.OfOptional<T>(cellStepFactors);
        var hs = TensorSpans.OfOptional<T>(hiddenStepFactors);
        var h = TensorSpans.Of<T>(hiddens);
        var c = TensorSpans.Of<T>(cells);
        var a = TensorSpans.Of<T>(gates);
        var tc = TensorSpans.Of<T>(cellTanhs);
        // Without activation quantizers everything in a step after its product goes row by row, so the rows are split over the
        // intra-op threads; a quantizer's random draws follow the autograd loop's order over whole tensors, so with any the
        // step runs on one thread.
        bool quantized = settings.Quantizes(0, 6);
        int rowParts = quantized ? 1 : RowParts(rows, features);
        for (int t = 0; t < steps; t++)
        {
            var z = a.Slice(t * stepSize, stepSize);
            product.Multiply(hiddens, t, standardizer is null ? z : standardizer.Step(t));
            if (standardizer is { IsRowWise: false }) standardizer.Forward(t);
            if (!quantized)
            {
                int step = t;
                ForEachRowPart(rows, rowParts, (_, first, count) =>
                {
                    int at = (step * rows + first) * features, size = count * features;
                    var zr = TensorSpans.Of<T>(gates).Slice(at, size);
                    AddRecurrentTerm<T>(zr, TensorSpans.Of<T>(terms).Slice(at, size), features, step, first, count, gains, standardizer);
                    var c = TensorSpans.Of<T>(cells);
                    var newCell = c.Slice((step + 1) * stateSize + first * hidden, count * hidden);
                    LstmStepMath.Activate(zr, count, hidden, slopes);
                    LstmStepMath.NewCell<T>(zr, c.Slice(step * stateSize + first * hidden, count * hidden), newCell, count, hidden);
                    LstmStepMath.EmitHidden<T>(zr, newCell, TensorSpans.Of<T>(cellTanhs).Slice(step * stateSize + first * hidden, count * hidden),
                        TensorSpans.Of<T>(hiddens).Slice((step + 1) * stateSize + first * hidden, count * hidden), count, hidden, cellSlope);
                });
                continue;
            }
            AddRecurrentTerm<T>(z, TensorSpans.Of<T>(terms).Slice(t * stepSize, stepSize), features, t, 0, rows, gains, standardizer);
            LstmStepMath.Activate(z, rows, hidden, slopes);
            // The quantizers in the autograd loop's order (its random draws): the gates i, f, g, o, then c', then h'.
            Span<T> q = z;
            if (gatesQuantized)
            {
                q = qa.Slice(t * stepSize, stepSize);
                for (int k = 0; k < 4; k++)
                    QuantizeGate(quantizers[k], z, q, qf.Slice(t * stepSize, stepSize), StepOf(qs, t, stepSize), stepValues[k], rows, hidden, 4, k, quantizerScratch, dtype, device);
            }
            var newCell = c.Slice((t + 1) * stateSize, stateSize);
            LstmStepMath.NewCell<T>(q, c.Slice(t * stateSize, stateSize), newCell, rows, hidden);
            quantizers[CellState]?.Quantize(newCell, cf.Slice(t * stateSize, stateSize), StepOf(cs, t, stateSize), stepValues[CellState], rows, hidden, dtype, device);
            var newHidden = h.Slice((t + 1) * stateSize, stateSize);
            LstmStepMath.EmitHidden<T>(q, newCell, tc.Slice(t * stateSize, stateSize), newHidden, rows, hidden, cellSlope);
            quantizers[Hidden]?.Quantize(newHidden, hf.Slice(t * stateSize, stateSize), StepOf(hs, t, stateSize), stepValues[Hidden], rows, hidden, dtype, device);
        }
        standardizer?.UpdateRunningStatistics();
        return new SavedState(hiddens, cells, gates, cellTanhs, standardizer?.Standardized, standardizer?.InverseDeviations,
            quantizedGates, gateFactors, cellFactors, hiddenFactors, gateStepFactors, cellStepFactors, hiddenStepFactors);
    }

    private static List<Tensor> BackwardSteps<T>(Tensor statesGradient, Tensor weightHh, Tensor? gain, Tensor? learnedSteps, SavedState state, RecurrentSequenceSettings settings)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int steps = (int)state.Gates.shape[0], rows = (int)state.Gates.shape[1], hidden = (int)state.Cells.shape[2], features = 4 * hidden;
        int stepSize = rows * features, stateSize = rows * hidden;
        var (dtype, device) = (state.Gates.dtype, state.Gates.device);
        var states = statesGradient.contiguous();
        var hiddenGradient = zeros(rows, hidden, dtype: dtype, device: device);
        var cellGradient = states[steps].clone();
        var gateGradients = empty(steps, rows, features, dtype: dtype, device: device);
        var standardizer = state.Standardized is null ? null : new SequenceStandardizer<T>(settings.Normalization, state.Standardized, state.InverseDeviations!);
        var recurrentGradients = standardizer is null ? gateGradients : empty(steps, rows, features, dtype: dtype, device: device);
        var gains = gain?.contiguous();
        var gainGradient = standardizer is null ? null : zeros(features, dtype: dtype, device: device);
        var product = new StepProduct<T>(weightHh);

        var slopes = GateSlopes<T>(settings.Slopes);
        T cellSlope = T.CreateChecked(settings.Slopes.CellOutput);
        var scratch = new T[2 * features];
        var dh = TensorSpans.Of<T>(hiddenGradient);
        var dr = TensorSpans.Of<T>(recurrentGradients);
        // A step's element-wise derivative goes row by row over the intra-op threads (RowParts), each part summing its own
        // gain and learned-step gradients, added in order after the loop; batch norm's derivative spans the rows and follows on
        // one thread, then the step's product.
        int rowParts = RowParts(rows, features), stepCount = (int)(learnedSteps?.shape[0] ?? 0);
        var partScratch = Enumerable.Range(0, rowParts).Select(_ => new T[2 * features]).ToArray();
        var partGains = Enumerable.Range(0, rowParts).Select(_ => new T[standardizer is null ? 0 : features]).ToArray();
        var partStepSums = Enumerable.Range(0, rowParts).Select(_ => new T[stepCount]).ToArray();
        for (int t = steps - 1; t >= 0; t--)
        {
            int step = t;
            ForEachRowPart(rows, rowParts, (part, first, count) =>
            {
                BackwardRows(step, first, count, states, hiddenGradient, cellGradient, gateGradients, recurrentGradients, gains, state, standardizer,
                    slopes, cellSlope, partScratch[part], partGains[part], partStepSums[part]);
            });
            if (standardizer is { IsRowWise: false }) standardizer.Backward(dr.Slice(t * stepSize, stepSize), t, scratch);
            product.Multiply(recurrentGradients, t, dh);
        }
        var dg = TensorSpans.OfOptional<T>(gainGradient);
        var stepSums = new T[stepCount];
        for (int part = 0; part < rowParts; part++)
        {
            if (!dg.IsEmpty) TensorPrimitives.Add(dg, partGains[part], dg);
            TensorPrimitives.Add(stepSums, partStepSums[part], stepSums);
        }
        var weightGradient = SequenceWeightGradient.Compute<T>(recurrentGradients, state.Hiddens, steps * rows);
        return new List<Tensor> { gateGradients, weightGradient, hiddenGradient, cellGradient, gainGradient!, StepGradient(learnedSteps, stepSums)!, null! };
    }

    /// <summary>
    /// Rows <paramref name="first"/> .. + <paramref name="count"/> of step <paramref name="step"/>'s derivative: adds the
    /// output's gradient to <paramref name="hiddenGradient"/>, applies h''s quantizer (straight-through factors, its learned
    /// step's gradient), runs <see cref="LstmStepMath.StepBackward"/> into <paramref name="gateGradients"/> and
    /// <paramref name="cellGradient"/>, and under a normalization writes the recurrent term's gradient (the gain times the
    /// gates', through the standardization under layer norm; batch norm's, which spans the rows, follows on one thread) and
    /// adds the gain's to <paramref name="gainSums"/>; learned steps' gradients go to <paramref name="stepSums"/>.
    /// </summary>
    private static void BackwardRows<T>(int step, int first, int count, Tensor statesGradient, Tensor hiddenGradient, Tensor cellGradient, Tensor gateGradients,
        Tensor recurrentGradients, Tensor? gains, SavedState state, SequenceStandardizer<T>? standardizer, T[] slopes, T cellSlope, T[] scratch, T[] gainSums,
        T[] stepSums) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int rows = (int)state.Gates.shape[1], hidden = (int)state.Cells.shape[2], features = 4 * hidden;
        int gateAt = (step * rows + first) * features, stateAt = (step * rows + first) * hidden, gateSize = count * features, stateSize = count * hidden;
        var dh = TensorSpans.Of<T>(hiddenGradient).Slice(first * hidden, stateSize);
        TensorPrimitives.Add(dh, TensorSpans.Of<T>(statesGradient).Slice(stateAt, stateSize), dh);
        var hiddenStepFactors = Rows<T>(state.HiddenStepFactors, stateAt, stateSize);
        if (!hiddenStepFactors.IsEmpty) stepSums[Hidden] += TensorPrimitives.Dot<T>(dh, hiddenStepFactors);
        var hiddenFactors = Rows<T>(state.HiddenFactors, stateAt, stateSize);
        if (!hiddenFactors.IsEmpty) TensorPrimitives.Multiply(dh, hiddenFactors, dh);
        var gates = TensorSpans.Of<T>(state.Gates).Slice(gateAt, gateSize);
        var dz = TensorSpans.Of<T>(gateGradients).Slice(gateAt, gateSize);
        LstmStepMath.StepBackward<T>(dh, TensorSpans.Of<T>(cellGradient).Slice(first * hidden, stateSize), gates,
            state.QuantizedGates is null ? gates : Rows<T>(state.QuantizedGates, gateAt, gateSize), Rows<T>(state.GateFactors, gateAt, gateSize),
            TensorSpans.Of<T>(state.Cells).Slice(stateAt, stateSize), TensorSpans.Of<T>(state.CellTanhs).Slice(stateAt, stateSize),
            Rows<T>(state.CellFactors, stateAt, stateSize), dz, scratch, count, hidden, slopes, cellSlope,
            Rows<T>(state.GateStepFactors, gateAt, gateSize), Rows<T>(state.CellStepFactors, stateAt, stateSize), stepSums);
        if (standardizer is not null)
            NormalizationBackwardRows<T>(dz, TensorSpans.Of<T>(recurrentGradients).Slice(gateAt, gateSize), step, first, count, gains!, standardizer, gainSums, scratch);
    }

    /// <summary>The gate slopes in the weight rows' order i, f, g, o.</summary>
    private static T[] GateSlopes<T>(ActivationSlopes slopes) where T : unmanaged, IFloatingPointIeee754<T> =>
        new[] { slopes.InputGate, slopes.ForgetGate, slopes.Candidate, slopes.OutputGate }.Select(T.CreateChecked).ToArray();
}
