using System.Reflection;
using Microsoft.ML.Runtime;

namespace Microsoft.ML.Quantized;

/// <summary>
/// The ML.NET versions this library runs on. It reads a few ML.NET internals (to save and load its components inside
/// ML.NET model files like ML.NET's own), which may move in a later major version, so every ML.NET entry point checks
/// the loaded Microsoft.ML first and names the supported versions instead of failing later with a missing member.
/// (ML.NET's assemblies all have version 1.0.0.0; the release is in their informational version, e.g. "6.0.0+6eff5cc".)
/// </summary>
internal static class SupportedMLNet
{
    /// <summary>The releases this library is built and tested against.</summary>
    public const string Versions = "5.0.x and 6.0.x (tested with 5.0.1 and 6.0.0)";

    private static readonly string? LoadedVersion =
        typeof(MLContext).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion;

    private static readonly string? LoadedError = ErrorFor(LoadedVersion);

    /// <summary>Throws a clear error when the Microsoft.ML this process loaded is not a supported release.</summary>
    public static void Check(IExceptionContext ectx)
    {
        if (LoadedError is not null) throw ectx.Except(LoadedError);
    }

    /// <summary>The error for ML.NET informational version <paramref name="informationalVersion"/>, or null when it is supported.</summary>
    internal static string? ErrorFor(string? informationalVersion)
    {
        var release = informationalVersion?.Split('+')[0];
        if (release is not null && Version.TryParse(release.Split('-')[0], out var version) && version.Major is 5 or 6) return null;
        return $"Microsoft.ML.Quantized {ModelFile.LibraryVersion} runs on Microsoft.ML {Versions}, but this app loaded Microsoft.ML {release ?? "(version not recorded)"}. " +
               "Reference Microsoft.ML 6.0.0 (or 5.0.1) in the app, or a Microsoft.ML.Quantized release that supports this ML.NET.";
    }
}
