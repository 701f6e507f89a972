using System.IO.Compression;

namespace Microsoft.ML.Quantized.Tests.MLNet;

/// <summary>Rewrites entries of an ML.NET model zip, to test how damaged or foreign model files are refused.</summary>
internal static class ModelZip
{
    /// <summary>A copy of <paramref name="zip"/> with each entry's bytes passed through <paramref name="change"/> (entry name, bytes).</summary>
    public static byte[] Rewrite(byte[] zip, Func<string, byte[], byte[]> change)
    {
        using var result = new MemoryStream();
        using (var source = new ZipArchive(new MemoryStream(zip), ZipArchiveMode.Read))
        using (var target = new ZipArchive(result, ZipArchiveMode.Create, leaveOpen: true))
        {
            foreach (var entry in source.Entries)
            {
                using var content = new MemoryStream();
                using (var input = entry.Open()) input.CopyTo(content);
                using var output = target.CreateEntry(entry.FullName).Open();
                output.Write(change(entry.FullName, content.ToArray()));
            }
        }
        return result.ToArray();
    }

    /// <summary>The names of the zip's entries.</summary>
    public static string[] EntryNames(byte[] zip)
    {
        using var archive = new ZipArchive(new MemoryStream(zip), ZipArchiveMode.Read);
        return archive.Entries.Select(e => e.FullName).ToArray();
    }

    /// <summary>The bytes of the one entry whose name ends with <paramref name="suffix"/>.</summary>
    public static byte[] Entry(byte[] zip, string suffix)
    {
        using var archive = new ZipArchive(new MemoryStream(zip), ZipArchiveMode.Read);
        using var stream = archive.Entries.Single(e => e.FullName.EndsWith(suffix, StringComparison.Ordinal)).Open();
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }

    /// <summary>The uncompressed length of every entry whose name ends with <paramref name="suffix"/>, summed.</summary>
    public static long EntryLength(byte[] zip, string suffix)
    {
        using var archive = new ZipArchive(new MemoryStream(zip), ZipArchiveMode.Read);
        return archive.Entries.Where(e => e.FullName.EndsWith(suffix, StringComparison.Ordinal)).Sum(e => e.Length);
    }
}
