namespace Microsoft.ML.Quantized;

/// <summary>CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), as in zip and PNG.</summary>
internal static class Crc32
{
    /// <summary>The running value to start from.</summary>
    public const uint Initial = 0xFFFFFFFFu;
    private static readonly uint[] Table = BuildTable();

    /// <summary>Folds <paramref name="data"/> into the running value <paramref name="crc"/>.</summary>
    public static uint Update(uint crc, ReadOnlySpan<byte> data)
    {
        foreach (byte b in data) crc = Table[(crc ^ b) & 0xFF] ^ (crc >> 8);
        return crc;
    }

    /// <summary>The checksum of everything folded into <paramref name="crc"/>.</summary>
    public static uint Finish(uint crc) => ~crc;

    private static uint[] BuildTable()
    {
        var table = new uint[256];
        for (uint i = 0; i < 256; i++)
        {
            uint c = i;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
        return table;
    }
}
