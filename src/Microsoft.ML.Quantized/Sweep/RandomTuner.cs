namespace Microsoft.ML.Quantized.Sweep;

/// <summary>
/// Samples each axis independently and uniformly (log-uniformly for log ranges), seeded by the experiment's seed
/// and the trial index, so the same sweep proposes the same configurations.
/// </summary>
public sealed class RandomTuner : ISweepTuner
{
    /// <inheritdoc />
    public QuantizationConfiguration? Propose(TunerContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return Sample(context.SearchSpace, context.CreateRandom());
    }

    internal static QuantizationConfiguration Sample(QuantizationSearchSpace space, Random random) =>
        space.Decode(space.Dimensions().Select(d => d.SampleUniform(random)).ToArray());
}
