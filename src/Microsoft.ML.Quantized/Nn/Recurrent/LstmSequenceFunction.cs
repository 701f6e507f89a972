using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized;

/// <summary>
/// The LSTM cell loop over a whole sequence as one autograd operation with a hand-written backward pass (backpropagation
/// through time written out): the forward runs without recording a graph and keeps the gate activations, cell states and
/// normalized recurrent terms; the backward walks the steps in reverse with a dozen tensor operations a step and takes the
/// gradient of <c>W_hh</c> as one matrix product over all steps.
/// </summary>
/// <remarks>
/// <para>Inputs: the input terms of every step <c>X</c> [T, B, 4H] (<see cref="QuantizedRecurrentCell"/>'s input term with
/// <c>b_ih</c>, <c>b_hh</c> and the hidden normalization's bias folded in), the effective recurrent weight <c>W_hh</c>
/// [4H, H], <c>h0</c>, <c>c0</c> [B, H] and the hidden normalization's gain [4H] (null without one). Per step:
/// <code>
/// z = X_t + gain * norm(h W_hh^T)   (X_t + h W_hh^T without a normalization)
/// i, f, o = sigma(z / l)   g = tanh(z / l_g)   c' = f c + i g   h' = o tanh(c' / l_c)
/// </code>
/// with <c>norm</c> the per-group layer normalization or the recurrent batch normalization of the step.</para>
/// <para>It computes the same function as the autograd loop it replaces (the tests compare outputs and every gradient);
/// the gain is speed: the autograd loop records and replays two to three graph nodes for every one of its small per-step
/// operations. Used for the LSTM whenever the fused kernel cannot run and no activation quantizer or cell-state
/// normalization is in the step.</para>
/// </remarks>
internal sealed class LstmSequenceFunction : autograd.MultiTensorFunction<LstmSequenceFunction>
{
    /// <inheritdoc/>
    public override string Name => "QuantizedLstmSequence";

    /// <summary>
    /// Runs the sequence; returns the output [T, B, H] and the final h and c [B, H], in the caller's dispose scope.
    /// <paramref name="gain"/> is required with a normalization in <paramref name="settings"/> and ignored without one.
    /// </summary>
    public static (Tensor Output, Tensor H, Tensor C) Run(Tensor inputTerms, Tensor weightHh, Tensor h0, Tensor c0, Tensor? gain, LstmSequenceSettings settings)
    {
        var results = apply(inputTerms, weightHh, h0, c0, settings.Normalized ? gain! : null!, settings);
        return (results[0], results[1], results[2]);
    }

    /// <inheritdoc/>
    public override List<Tensor> forward(autograd.AutogradContext ctx, params object[] vars)
    {
        var inputTerms = (Tensor)vars[0];
        var weightHh = (Tensor)vars[1];
        var h0 = (Tensor)vars[2];
        var c0 = (Tensor)vars[3];
        var gain = vars[4] as Tensor;
        var settings = (LstmSequenceSettings)vars[5];
        int steps = (int)inputTerms.shape[0];
        long hidden = h0.shape[1];

        using var scope = NewDisposeScope();
        var weightHhTransposed = weightHh.t();
        var preActivationScale = settings.PreActivationScale(hidden, inputTerms.dtype, inputTerms.device);
        using var cellScale = settings.CellScale;
        var xs = inputTerms.unbind(0);
        var activations = new Tensor[steps];
        var cells = new Tensor[steps];
        var cellTanhs = new Tensor[steps];
        var hiddens = new Tensor[steps + 1];
        var normalized = settings.Normalized ? new Tensor[steps] : null;
        var inverseDeviations = settings.Normalized ? new Tensor[steps] : null;
        var statistics = settings.TracksBatchStatistics ? new (Tensor Mean, Tensor Variance)[steps] : null;
        Tensor h = h0, c = c0;
        hiddens[0] = h0;
        for (int t = 0; t < steps; t++)
        {
            Tensor z;
            if (gain is null)
            {
                z = xs[t].addmm(h, weightHhTransposed);
            }
            else
            {
                var (n, inverseDeviation, batchStatistics) = settings.Standardize(h.mm(weightHhTransposed), t);
                normalized![t] = n;
                inverseDeviations![t] = inverseDeviation;
                if (statistics is not null) statistics[t] = batchStatistics!.Value;
                z = xs[t].addcmul(n, gain, Scalars.One);
            }
            if (preActivationScale is not null) z = z.mul_(preActivationScale);
            var a = z.sigmoid();
            a.narrow(1, 2 * hidden, hidden).copy_(z.narrow(1, 2 * hidden, hidden).tanh());
            var gates = a.chunk(4, 1);
            c = gates[1].mul(c).addcmul_(gates[0], gates[2], Scalars.One);
            var cellTanh = cellScale is null ? c.tanh() : c.mul(cellScale).tanh_();
            h = gates[3].mul(cellTanh);
            activations[t] = a;
            cells[t] = c;
            cellTanhs[t] = cellTanh;
            hiddens[t + 1] = h;
        }
        if (statistics is not null)
            settings.BatchNorm!.UpdateRunningStatistics(stack(statistics.Select(s => s.Mean)), stack(statistics.Select(s => s.Variance)), inputTerms.shape[1], firstStep: 0);

        var output = stack(hiddens.Skip(1), 0);
        var saved = new List<Tensor>
        {
            weightHh, c0, gain!, stack(hiddens.Take(steps), 0), stack(activations, 0), stack(cells, 0), stack(cellTanhs, 0),
            normalized is null ? null! : stack(normalized, 0), inverseDeviations is null ? null! : stack(inverseDeviations, 0),
        };
        ctx.save_for_backward(saved);
        ctx.save_data("settings", settings);
        // Unused outputs get no gradient (an invalid tensor): TorchSharp's zero-filling reads output copies that the
        // caller's dispose scope has already freed by then.
        ctx.set_materialize_grads(false);
        var results = new List<Tensor> { output, h, c };
        foreach (var result in results) result.MoveToOuterDisposeScope();
        foreach (var tensor in saved) tensor?.MoveToOuterDisposeScope();
        return results;
    }

    /// <inheritdoc/>
    public override List<Tensor> backward(autograd.AutogradContext ctx, List<Tensor> gradOutputs)
    {
        var settings = (LstmSequenceSettings)ctx.get_data("settings");
        using var scope = NewDisposeScope();
        var saved = ctx.get_saved_variables();
        var (weightHh, c0, gain, hiddenInputs, activations, cells, cellTanhs) = (saved[0], saved[1], saved[2], saved[3], saved[4], saved[5], saved[6]);
        var (normalized, inverseDeviations) = (saved[7], saved[8]);
        bool normed = settings.Normalized;
        int steps = (int)activations.shape[0];
        long hidden = cells.shape[2];
        using var cellScale = settings.CellScale;

        // Everything that does not depend on the incoming gradient, for all steps at once: the derivatives of the gate
        // activations with respect to z (sigma' = a (1 - a), tanh' = 1 - g^2, each over its slope) and of tanh(c / l_c).
        var gateDerivatives = activations.mul(activations.neg().add_(Scalars.One));
        gateDerivatives.narrow(2, 2 * hidden, hidden).copy_(activations.narrow(2, 2 * hidden, hidden).square().neg_().add_(Scalars.One));
        var preActivationScale = settings.PreActivationScale(hidden, activations.dtype, activations.device);
        if (preActivationScale is not null) gateDerivatives.mul_(preActivationScale);
        var cellTanhDerivatives = cellTanhs.square().neg_().add_(Scalars.One);
        if (cellScale is not null) cellTanhDerivatives.mul_(cellScale);

        var gates = activations.unbind(0);
        var cellSteps = cells.unbind(0);
        var tanhSteps = cellTanhs.unbind(0);
        var gateDerivativeSteps = gateDerivatives.unbind(0);
        var tanhDerivativeSteps = cellTanhDerivatives.unbind(0);
        var normalizedSteps = normed ? normalized.unbind(0) : null;
        var deviationSteps = normed ? inverseDeviations.unbind(0) : null;
        var inputTermGradients = new Tensor[steps];
        var recurrentGradients = new Tensor[steps];
        Tensor dh = GradientOrZeros(gradOutputs[1], cells, hidden), dc = GradientOrZeros(gradOutputs[2], cells, hidden);
        var outputGradients = GradientOrZeros(gradOutputs[0], cells, hidden, steps).unbind(0);
        for (int t = steps - 1; t >= 0; t--)
        {
            dh = dh.add(outputGradients[t], Scalars.One);
            var gate = gates[t].chunk(4, 1); // i, f, g, o
            var previousCell = t > 0 ? cellSteps[t - 1] : c0;
            dc = dc.addcmul(dh.mul(gate[3]), tanhDerivativeSteps[t], Scalars.One);
            var dz = cat(new[] { dc.mul(gate[2]), dc.mul(previousCell), dc.mul(gate[0]), dh.mul(tanhSteps[t]) }, 1).mul_(gateDerivativeSteps[t]);
            inputTermGradients[t] = dz;
            var dr = normed ? settings.StandardizeBackward(dz.mul(gain), normalizedSteps![t], deviationSteps![t]) : dz;
            recurrentGradients[t] = dr;
            dh = dr.mm(weightHh);
            dc = dc.mul(gate[1]);
        }
        var inputTermsGradient = stack(inputTermGradients, 0);
        long rows = (long)steps * dh.shape[0];
        var weightGradient = stack(recurrentGradients, 0).view(rows, -1).t().mm(hiddenInputs.view(rows, hidden));
        var gainGradient = normed ? inputTermsGradient.mul(normalized).sum(new long[] { 0, 1 }) : null;
        var gradients = new List<Tensor> { inputTermsGradient, weightGradient, dh, dc, gainGradient!, null! };
        foreach (var gradient in gradients) gradient?.MoveToOuterDisposeScope();
        return gradients;
    }

    /// <summary>The incoming gradient of an output, or zeros of its shape ([B, H], or [T, B, H] with <paramref name="steps"/>) when the output was not used.</summary>
    private static Tensor GradientOrZeros(Tensor gradient, Tensor like, long hidden, long? steps = null)
    {
        if (gradient is not null && !gradient.IsInvalid) return gradient;
        long batch = like.shape[1];
        var shape = steps is null ? new[] { batch, hidden } : new[] { steps.Value, batch, hidden };
        return zeros(shape, dtype: like.dtype, device: like.device);
    }
}
