using Microsoft.ML.Quantized.Sweep;
using Microsoft.ML.Runtime;

namespace Microsoft.ML.Quantized;

/// <summary>
/// Quantization sweeps on an <see cref="MLContext"/>: <c>mlContext.Quantized().CreateExperiment()</c>, the counterpart
/// of AutoML's <c>mlContext.Auto().CreateExperiment()</c> for quantized recurrent networks.
/// </summary>
public sealed class QuantizedSweepCatalog
{
    private readonly IHostEnvironment _env;

    internal QuantizedSweepCatalog(IHostEnvironment env) => _env = env;

    /// <summary>
    /// A <see cref="QuantizationExperiment"/> bound to this MLContext: its seed is the MLContext's (one drawn from the
    /// MLContext's random source when it was created without a seed; see <see cref="QuantizationExperiment.Seed"/>), it
    /// logs the sweep and each trial to the MLContext's log, and <c>MLContext.CancelExecution()</c> stops it as its
    /// cancellation token would (<see cref="QuantizationExperiment.RunAsync"/> returns the trials finished so far, with
    /// <see cref="SweepStopReason.Cancelled"/>). Set a trial runner from a trainer's or estimator's <c>CreateTrialRunner</c>
    /// (<see cref="TransformerTrialRunner{TTransformer}"/>), a budget, and the other settings as on
    /// <see cref="QuantizationExperiment"/>.
    /// </summary>
    public QuantizationExperiment CreateExperiment() => new(_env);
}
