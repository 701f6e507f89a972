using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized;

/// <summary>
/// What <see cref="LstmSequenceFunction"/> needs besides tensors: the HitNet slopes and the normalization of the recurrent
/// term (layer, batch or none), with the training flag of the forward pass (batch normalization's batch or running
/// statistics).
/// </summary>
/// <param name="Slopes">Activation slopes of the cell.</param>
/// <param name="LayerNorm">Layer normalization of <c>W_h h</c>, or null.</param>
/// <param name="BatchNorm">Batch normalization of <c>W_h h</c>, or null.</param>
/// <param name="Training">True for batch statistics (and running-statistics updates), false for running statistics.</param>
internal sealed record LstmSequenceSettings(ActivationSlopes Slopes, RecurrentLayerNorm? LayerNorm, RecurrentBatchNorm? BatchNorm, bool Training)
{
    /// <summary>True when the recurrent term is normalized (and the function takes a gain).</summary>
    public bool Normalized => LayerNorm is not null || BatchNorm is not null;

    /// <summary>True when the forward pass takes batch statistics, whose running averages it then updates.</summary>
    public bool TracksBatchStatistics => BatchNorm is not null && Training;

    /// <summary>
    /// The factor of each pre-activation [4H] (one over the gate's slope, in the order i, f, g, o), or null when every gate
    /// slope is 1.
    /// </summary>
    public Tensor? PreActivationScale(long hidden, ScalarType dtype, Device device)
    {
        double[] slopes = { Slopes.InputGate, Slopes.ForgetGate, Slopes.Candidate, Slopes.OutputGate };
        if (slopes.All(s => s == 1.0)) return null;
        var scale = new double[4 * hidden];
        for (int gate = 0; gate < 4; gate++) Array.Fill(scale, 1.0 / slopes[gate], (int)(gate * hidden), (int)hidden);
        return tensor(scale, dtype: dtype, device: device);
    }

    /// <summary>One over the cell-output slope, or null when it is 1 (a new scalar the caller disposes).</summary>
    public Scalar? CellScale => Slopes.CellOutput == 1.0 ? null : (1.0 / Slopes.CellOutput).ToScalar();

    /// <summary>
    /// Step <paramref name="step"/>'s recurrent product [B, 4H] standardized, with what the backward pass needs (the inverse
    /// standard deviation) and, under batch statistics, the step's batch mean and biased variance [4H].
    /// </summary>
    public (Tensor Normalized, Tensor InverseDeviation, (Tensor Mean, Tensor Variance)? Statistics) Standardize(Tensor product, int step)
    {
        if (LayerNorm is not null)
        {
            var (normalized, inverseDeviation) = LayerNorm.StandardizeKeepingDeviation(product);
            return (normalized, inverseDeviation, null);
        }
        return BatchNorm!.StandardizeStepKeepingDeviation(product, step, Training);
    }

    /// <summary>The gradient of the standardization's input from that of its output (see <see cref="Standardize"/>).</summary>
    public Tensor StandardizeBackward(Tensor gradient, Tensor normalized, Tensor inverseDeviation)
        => LayerNorm is not null
            ? LayerNorm.StandardizeBackward(gradient, normalized, inverseDeviation)
            : BatchNorm!.StandardizeStepBackward(gradient, normalized, inverseDeviation, Training);
}
