using System.Reflection;
using Microsoft.ML.Runtime;

namespace Microsoft.ML.Quantized;

/// <summary>
/// The version check of the components this library stores in ML.NET model files. ML.NET's own check says only
/// "model is too new/old" with its own version; this one says which Microsoft.ML.Quantized version saved the
/// component, which component formats this version reads, and what to do.
/// </summary>
internal static class ComponentVersion
{
    /// <summary>
    /// Checks that the loaded ML.NET is supported, then the version of the component <paramref name="ctx"/> is at against <paramref name="version"/> (throwing
    /// a clear error for a newer or older format), then does ML.NET's own checks (<c>ctx.CheckAtModel</c>).
    /// </summary>
    public static void CheckAtModel(IHost host, ModelLoadContext ctx, VersionInfo version, string userName)
    {
        SupportedMLNet.Check(host);
        var header = ctx.Header;
        if (header.ModelSignature == version.ModelSignature && header.ModelVerReadable <= header.ModelVerWritten)
        {
            string writer = $"Microsoft.ML.Quantized {WriterVersion(ctx.LoaderAssemblyName)}";
            string reads = $"the formats this Microsoft.ML.Quantized ({ModelFile.LibraryVersion}) reads, {Hex(version.VerWeCanReadBack)} to {Hex(version.VerWrittenCur)}";
            if (header.ModelVerReadable > version.VerWrittenCur)
                throw host.Except($"The {userName} in this ML.NET model was saved by {writer} in format {Hex(header.ModelVerWritten)}, newer than {reads}. Load the model with {writer} or later.");
            if (header.ModelVerWritten < version.VerWeCanReadBack)
                throw host.Except($"The {userName} in this ML.NET model was saved by {writer} in format {Hex(header.ModelVerWritten)}, older than {reads}. Load the model with {writer}, or retrain it and save it with this version.");
        }
        ctx.CheckAtModel(version);
    }

    private static string WriterVersion(string? assemblyName) =>
        string.IsNullOrEmpty(assemblyName) ? "(version not recorded)" : new AssemblyName(assemblyName).Version?.ToString() ?? "(version not recorded)";

    private static string Hex(uint version) => $"0x{version:X8}";
}
