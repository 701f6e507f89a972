namespace Microsoft.ML.Quantized.Orleans;

/// <summary>The worker that ran an attempt is gone: a poll reached a fresh activation that never started the trial (its silo failed).</summary>
internal sealed class WorkerLostException()
    : Exception("The worker that ran this attempt is gone (its silo failed); the trial runs again on another silo.");
