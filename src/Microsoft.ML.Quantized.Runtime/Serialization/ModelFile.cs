using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Microsoft.ML.Quantized;

/// <summary>
/// The versioned, checksummed container of every saved model: magic, format version, library version,
/// model kind, a JSON header (options, vocabulary, history) and a binary payload (weights), then a SHA-256
/// of all that. A damaged, foreign or newer file gets a <see cref="ModelFormatException"/>, never a crash.
/// </summary>
internal static class ModelFile
{
    private static readonly byte[] Magic = "MLQZMODL"u8.ToArray();
    public const int FormatVersion = 1;

    /// <summary>
    /// JSON settings of every model header: enums by name, NaN and infinities allowed (e.g. no validation loss), and a
    /// member this build does not know is an error (a newer library's setting must not be dropped silently).
    /// </summary>
    public static JsonSerializerOptions HeaderJson { get; } = new()
    {
        Converters = { new JsonStringEnumConverter() },
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    };

    /// <summary>
    /// Parses the JSON header of a <paramref name="kind"/> model read by <see cref="Read"/>.
    /// </summary>
    /// <exception cref="ModelFormatException">The header is empty, malformed, or holds a setting this library does not know.</exception>
    public static T ReadHeader<T>(string json, string kind) where T : class
    {
        try
        {
            return JsonSerializer.Deserialize<T>(json, HeaderJson) ?? throw new ModelFormatException($"The '{kind}' model file has an empty header.");
        }
        catch (JsonException e)
        {
            throw new ModelFormatException(
                $"The '{kind}' model header cannot be read by Microsoft.ML.Quantized {LibraryVersion}: {e.Message} " +
                "A newer library version may have saved a setting this one does not know; load the model with that version.", e);
        }
    }

    public static string LibraryVersion { get; } =
        typeof(ModelFile).Assembly.GetName().Version?.ToString() ?? "0.0.0.0";

    public static void Write(Stream stream, string kind, string headerJson, byte[] payload)
    {
        using var body = new MemoryStream();
        using (var w = new BinaryWriter(body, Encoding.UTF8, leaveOpen: true))
        {
            w.Write(Magic);
            w.Write(FormatVersion);
            w.Write(LibraryVersion);
            w.Write(kind);
            w.Write(headerJson);
            w.Write(payload.Length);
            w.Write(payload);
        }
        var bytes = body.ToArray();
        stream.Write(bytes);
        stream.Write(SHA256.HashData(bytes));
    }

    public static (string HeaderJson, byte[] Payload) Read(Stream stream, string expectedKind)
    {
        byte[] all;
        using (var copy = new MemoryStream())
        {
            stream.CopyTo(copy);
            all = copy.ToArray();
        }
        if (all.Length < Magic.Length + 32 || !all.AsSpan(0, Magic.Length).SequenceEqual(Magic))
            throw new ModelFormatException($"This is not a Microsoft.ML.Quantized model file (expected a '{expectedKind}' model; the file does not start with the model signature).");
        var body = all.AsSpan(0, all.Length - 32);
        if (!SHA256.HashData(body).AsSpan().SequenceEqual(all.AsSpan(all.Length - 32)))
            throw new ModelFormatException($"The '{expectedKind}' model file is damaged: its SHA-256 checksum does not match its contents (truncated or modified). Save the model again.");
        try
        {
            using var r = new BinaryReader(new MemoryStream(all, Magic.Length, body.Length - Magic.Length), Encoding.UTF8);
            int version = r.ReadInt32();
            var writtenBy = r.ReadString();
            if (version != FormatVersion)
                throw new ModelFormatException($"The model file has format version {version} (written by Microsoft.ML.Quantized {writtenBy}); this library ({LibraryVersion}) reads format version {FormatVersion}. Load it with a matching library version, or retrain.");
            var kind = r.ReadString();
            if (kind != expectedKind)
                throw new ModelFormatException($"The model file holds a '{kind}' model, not a '{expectedKind}' model. Load it with the matching Load method.");
            var header = r.ReadString();
            var payload = r.ReadBytes(r.ReadInt32());
            return (header, payload);
        }
        catch (EndOfStreamException e)
        {
            throw new ModelFormatException($"The '{expectedKind}' model file ends early: it is truncated.", e);
        }
    }
}
