namespace Microsoft.ML.Quantized.Orleans;

/// <summary>An attempt at a trial failed on its worker: the runner threw; the message is its error.</summary>
internal sealed class TrialAttemptFailedException(string message) : Exception(message);
