using Microsoft.ML.Quantized.Sweep;

namespace Microsoft.ML.Quantized.Orleans;

/// <summary>
/// A trial as it travels to a worker grain: the <see cref="TrialContext"/> fields, the configuration as its JSON, and the
/// workload that names the runner (and so the data) on the worker. Data never travels: the workload's runner on each silo
/// reads it from a place every silo can reach.
/// </summary>
[GenerateSerializer, Immutable]
internal sealed record TrialAssignment(
    [property: Id(0)] string Workload,
    [property: Id(1)] int TrialId,
    [property: Id(2)] string ConfigurationJson,
    [property: Id(3)] int Epochs,
    [property: Id(4)] int PreviousEpochs,
    [property: Id(5)] int Rung,
    [property: Id(6)] int RungCount,
    [property: Id(7)] string CheckpointDirectory,
    [property: Id(8)] int Seed)
{
    /// <summary>The assignment of <paramref name="context"/> under <paramref name="workload"/>.</summary>
    public static TrialAssignment Of(string workload, TrialContext context) => new(
        workload, context.TrialId, context.Configuration.ToJson(), context.Epochs, context.PreviousEpochs, context.Rung, context.RungCount,
        context.CheckpointDirectory, context.Seed);

    /// <summary>The trial context the worker's runner is given.</summary>
    public TrialContext ToContext() => new(
        TrialId, QuantizationConfiguration.FromJson(ConfigurationJson), Epochs, PreviousEpochs, Rung, RungCount, CheckpointDirectory, Seed);
}
