namespace Microsoft.ML.Quantized.Samples.Commands;

/// <summary>The comma-separated lists the commands take (<c>--seeds 1,2,3</c>, <c>--norms none, layer</c>).</summary>
internal static class OptionList
{
    /// <summary>The items of <paramref name="text"/>: split at commas, each trimmed, empty ones dropped.</summary>
    public static string[] Split(string text) => text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
}
