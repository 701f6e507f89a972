namespace Microsoft.ML.Quantized.Tests;

/// <summary>Reports on the caller's thread as the report is made (<see cref="Progress{T}"/> posts to a synchronization context instead).</summary>
internal sealed class SynchronousProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}
