namespace Microsoft.ML.Quantized.Sweep;

/// <summary>
/// Proposes the configurations a sweep trains (as AutoML's <c>ITuner</c>). A tuner is a function of its context:
/// the search space, the seed, the trial index and the history so far. It keeps no hidden state, so a resumed sweep
/// proposes exactly what an uninterrupted one would have. Implementations: <see cref="GridTuner"/>,
/// <see cref="RandomTuner"/>, <see cref="TreeParzenTuner"/>.
/// </summary>
public interface ISweepTuner
{
    /// <summary>
    /// The next configuration to try, or null when the tuner has nothing left (a finished grid). A configuration
    /// already tried is skipped by the experiment, which then asks again with <see cref="TunerContext.Attempt"/> + 1.
    /// </summary>
    QuantizationConfiguration? Propose(TunerContext context);
}
