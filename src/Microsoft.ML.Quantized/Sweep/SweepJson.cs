using System.Text.Json;
using System.Text.Json.Serialization;

namespace Microsoft.ML.Quantized.Sweep;

/// <summary>JSON settings shared by configurations, results and the state file.</summary>
internal static class SweepJson
{
    public static JsonSerializerOptions Options { get; } = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        Converters = { new JsonStringEnumConverter() },
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        WriteIndented = true,
    };
}
