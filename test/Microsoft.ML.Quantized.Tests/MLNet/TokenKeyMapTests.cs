namespace Microsoft.ML.Quantized.Tests.MLNet;

/// <summary>
/// The token key map's stored form: known keys as 7-bit-encoded gaps (byte counts worked by hand), the earlier ulong-per-key
/// layout still read, damaged maps rejected with <see cref="ModelFormatException"/>.
/// </summary>
[TestClass]
public sealed class TokenKeyMapTests
{
    [TestMethod]
    public void Keys_are_stored_as_gaps_of_one_to_three_bytes_and_read_back()
    {
        // Gaps 1, 1, 3, 295 and 69,700: one byte below 128, two below 16,384, three below 2,097,152.
        ulong[] keys = [1, 2, 5, 300, 70_000];
        var map = new TokenKeyMap(100_000, keys, UnknownTokenHandling.MapToUnknown);
        var bytes = Save(map);
        Assert.AreEqual(8 + 4 + (1 + 1 + 1 + 2 + 3) + 1, bytes.Length);
        Assert.AreEqual(0b1010_0111, bytes[15], "295 = 0b10_0100111: low seven bits with the continuation bit");
        Assert.AreEqual(0b0000_0010, bytes[16], "then the high bits");

        var loaded = TokenKeyMap.Load(Reader(bytes), gapEncoded: true);
        Assert.AreEqual(100_000UL, loaded.KeyCount);
        CollectionAssert.AreEqual(keys, loaded.Keys);
        Assert.AreEqual(UnknownTokenHandling.MapToUnknown, loaded.UnknownTokens);
        Assert.IsTrue(loaded.TryGetId(300, out int id));
        Assert.AreEqual(3, id);
    }

    [TestMethod]
    public void The_ulong_per_key_layout_of_earlier_formats_still_reads()
    {
        using var stream = new MemoryStream();
        using (var writer = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true))
        {
            writer.Write(10UL);
            writer.Write(3);
            foreach (ulong k in new ulong[] { 2, 7, 9 }) writer.Write(k);
            writer.Write((byte)UnknownTokenHandling.Skip);
        }
        var map = TokenKeyMap.Load(Reader(stream.ToArray()), gapEncoded: false);
        CollectionAssert.AreEqual(new ulong[] { 2, 7, 9 }, map.Keys);
        Assert.AreEqual(UnknownTokenHandling.Skip, map.UnknownTokens);

        // The first format: no handling byte, the caller says what it was.
        var first = TokenKeyMap.Load(Reader(stream.ToArray()[..^1]), gapEncoded: false, UnknownTokenHandling.Strict);
        Assert.AreEqual(UnknownTokenHandling.Strict, first.UnknownTokens);
    }

    [TestMethod]
    public void Damaged_maps_are_rejected()
    {
        var bytes = Save(new TokenKeyMap(10, [3, 4], UnknownTokenHandling.Strict));

        var tooMany = (byte[])bytes.Clone();
        tooMany[8] = 11; // 11 keys for a key type of 10 values
        StringAssert.Contains(Assert.ThrowsExactly<ModelFormatException>(() => TokenKeyMap.Load(Reader(tooMany), gapEncoded: true)).Message, "11 keys");

        var repeated = (byte[])bytes.Clone();
        repeated[13] = 0; // a gap of 0 repeats key 3
        StringAssert.Contains(Assert.ThrowsExactly<ModelFormatException>(() => TokenKeyMap.Load(Reader(repeated), gapEncoded: true)).Message, "repeated");

        byte[] endless = [.. bytes[..12], .. Enumerable.Repeat((byte)0xFF, 10), 0x01];
        StringAssert.Contains(Assert.ThrowsExactly<ModelFormatException>(() => TokenKeyMap.Load(Reader(endless), gapEncoded: true)).Message, "7-bit");

        Assert.ThrowsExactly<EndOfStreamException>(() => TokenKeyMap.Load(Reader(bytes[..13]), gapEncoded: true));
    }

    private static byte[] Save(TokenKeyMap map)
    {
        using var stream = new MemoryStream();
        using (var writer = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true)) map.Save(writer);
        return stream.ToArray();
    }

    private static BinaryReader Reader(byte[] bytes) => new(new MemoryStream(bytes));
}
