using Microsoft.ML.Runtime;

namespace Microsoft.ML.Quantized;

/// <summary>
/// Maps the keys of a token column to a model's token ids: the keys the model knows (seen in training, at least the
/// minimum count times), in key order, get ids 0..K-1; with <see cref="UnknownTokenHandling.MapToUnknown"/>,
/// <c>&lt;unk&gt;</c> gets id K and every other key maps to it. Only known keys get an embedding (and a decoder row),
/// so a character column (65,535 possible keys) costs what its alphabet costs. Language models give their row
/// separator <c>&lt;eos&gt;</c> the id after these (<see cref="EndOfSequenceId"/>).
/// </summary>
internal sealed class TokenKeyMap
{
    private readonly Dictionary<ulong, int> _ids;

    public TokenKeyMap(ulong keyCount, ulong[] keys, UnknownTokenHandling unknownTokens)
    {
        KeyCount = keyCount;
        Keys = keys;
        UnknownTokens = unknownTokens;
        _ids = new Dictionary<ulong, int>(keys.Length);
        for (int i = 0; i < keys.Length; i++)
        {
            if (keys[i] == 0 || keys[i] > keyCount || !_ids.TryAdd(keys[i], i))
                throw new ModelFormatException($"The token key map is damaged: key {keys[i]} is out of 1..{keyCount} or repeated.");
        }
    }

    /// <summary>
    /// The map of a training column: the keys counted in <paramref name="counts"/>, those seen fewer than
    /// <paramref name="minimumCount"/> times left to <c>&lt;unk&gt;</c> when <paramref name="unknownTokens"/> is
    /// <see cref="UnknownTokenHandling.MapToUnknown"/> (otherwise every counted key is known).
    /// </summary>
    public static TokenKeyMap FromCounts(ulong keyCount, IReadOnlyDictionary<ulong, long> counts, UnknownTokenHandling unknownTokens, int minimumCount)
    {
        long least = unknownTokens == UnknownTokenHandling.MapToUnknown ? minimumCount : 1;
        var keys = counts.Where(c => c.Value >= least).Select(c => c.Key).Order().ToArray();
        return new TokenKeyMap(keyCount, keys, unknownTokens);
    }

    /// <summary>Key values of the column's key type (keys run 1..KeyCount; 0 is missing).</summary>
    public ulong KeyCount { get; }

    /// <summary>The keys the model knows, by token id.</summary>
    public ulong[] Keys { get; }

    /// <summary>What happens to a key the model does not know.</summary>
    public UnknownTokenHandling UnknownTokens { get; }

    /// <summary>Whether the model has a <c>&lt;unk&gt;</c> token.</summary>
    public bool HasUnknown => UnknownTokens == UnknownTokenHandling.MapToUnknown;

    /// <summary>Token id of <c>&lt;unk&gt;</c>, or -1 without one.</summary>
    public int UnknownId => HasUnknown ? Keys.Length : -1;

    /// <summary>Token ids this map gives: the known keys plus <c>&lt;unk&gt;</c> when there is one.</summary>
    public int Count => Keys.Length + (HasUnknown ? 1 : 0);

    /// <summary>Language models: token id of the row separator, after the map's own ids.</summary>
    public int EndOfSequenceId => Count;

    /// <summary>Language models: token ids including <c>&lt;eos&gt;</c>.</summary>
    public int VocabularySize => Count + 1;

    /// <summary>The id of a known key (not <c>&lt;unk&gt;</c>).</summary>
    public bool TryGetId(ulong key, out int id) => _ids.TryGetValue(key, out id);

    /// <summary>
    /// The token id of every key value 0..<see cref="KeyCount"/> (index = key), <c>&lt;unk&gt;</c>'s for every key the model
    /// does not know, 0 (missing) included: the map as a lookup table (an ONNX graph's). Needs a <c>&lt;unk&gt;</c> token.
    /// </summary>
    public long[] TokenIdTable()
    {
        if (!HasUnknown) throw new InvalidOperationException($"A key map with UnknownTokens = {UnknownTokens} has no <unk> token to give unknown keys.");
        var table = new long[checked((int)KeyCount) + 1];
        Array.Fill(table, UnknownId);
        for (int id = 0; id < Keys.Length; id++) table[Keys[id]] = id;
        return table;
    }

    /// <summary>
    /// <see cref="TokenIdTable"/> for an ONNX export of a <paramref name="model"/> (e.g. "classifier"); refuses maps that
    /// drop or reject keys, saying why.
    /// </summary>
    /// <exception cref="InvalidOperationException"><see cref="UnknownTokens"/> is Skip or Strict.</exception>
    public long[] OnnxTokenIdTable(string model)
    {
        if (!HasUnknown)
            throw new InvalidOperationException(
                $"This {model} was trained with UnknownTokens = {UnknownTokens}, which an ONNX graph of fixed shape cannot do (Skip drops a row's unknown tokens, Strict rejects the row). " +
                "Train with UnknownTokens = MapToUnknown (the default) to export from the ML.NET model, or export the packed model and map the keys to token ids yourself.");
        return TokenIdTable();
    }

    /// <summary>The key of token id <paramref name="id"/>: 0 (missing) for <c>&lt;unk&gt;</c>.</summary>
    public ulong KeyOf(int id) => id < Keys.Length ? Keys[id] : 0;

    /// <summary>
    /// Appends the ids of a row's keys to <paramref name="ids"/>; returns how many were appended. A key the model does
    /// not know becomes <c>&lt;unk&gt;</c>, is dropped, or is an error naming the column, row and position, as
    /// <see cref="UnknownTokens"/> says. <paramref name="role"/> (e.g. "validation data") is added to errors.
    /// </summary>
    public int AppendRow(IExceptionContext ectx, ReadOnlySpan<ulong> keys, List<int> ids, string column, long? row, string? role = null)
    {
        int appended = 0;
        for (int i = 0; i < keys.Length; i++)
        {
            if (TryGetId(keys[i], out int id)) ids.Add(id);
            else if (HasUnknown) ids.Add(UnknownId);
            else if (UnknownTokens == UnknownTokenHandling.Skip) continue;
            else throw ectx.Except(UnknownKeyMessage(keys[i], column, row, i) + (role is null ? "" : $" ({role})"));
            appended++;
        }
        return appended;
    }

    public string UnknownKeyMessage(ulong key, string column, long? row, int position)
    {
        string what = key == 0
            ? "key 0, a missing value (MapValueToKey gives it to values it was not fitted on)"
            : key > KeyCount
                ? $"key {key}, outside the column's key range 1..{KeyCount}"
                : $"key {key}, which never occurred in the training data";
        return $"Column '{column}', {(row is long r ? $"row {r}" : "row being scored")}, token {position}: {what}. This model was trained with UnknownTokens = Strict, so every token must be a key it was trained on; " +
               "fit the key mapping and the model on the same data, or train with UnknownTokens = MapToUnknown (the default) or Skip.";
    }

    /// <summary>
    /// Writes the map: ulong key count, int32 number of known keys, the known keys as gaps (each key minus the one before,
    /// the first minus 0) in 7-bit variable-length encoding, then the unknown-token handling byte. Keys are in ascending
    /// order with small gaps, so a key costs about one byte instead of eight.
    /// </summary>
    public void Save(BinaryWriter writer)
    {
        writer.Write(KeyCount);
        writer.Write(Keys.Length);
        ulong previous = 0;
        foreach (var k in Keys)
        {
            writer.Write7BitEncodedInt64(unchecked((long)(k - previous)));
            previous = k;
        }
        writer.Write((byte)UnknownTokens);
    }

    /// <summary>
    /// Reads a map written by <see cref="Save"/> (<paramref name="gapEncoded"/>), or by the formats before it, which wrote
    /// every key as a ulong; those before the unknown-token handling byte (<paramref name="handlingOfOldFormat"/> given)
    /// had no such byte.
    /// </summary>
    public static TokenKeyMap Load(BinaryReader reader, bool gapEncoded, UnknownTokenHandling? handlingOfOldFormat = null)
    {
        ulong keyCount = reader.ReadUInt64();
        int n = reader.ReadInt32();
        if (n < 0 || (ulong)n > keyCount) throw new ModelFormatException($"The token key map is damaged: {n} keys for a key type of {keyCount} values.");
        var keys = new ulong[n];
        ulong previous = 0;
        try
        {
            for (int i = 0; i < n; i++)
                keys[i] = previous = gapEncoded ? unchecked(previous + (ulong)reader.Read7BitEncodedInt64()) : reader.ReadUInt64();
        }
        catch (FormatException)
        {
            throw new ModelFormatException("The token key map is damaged: a key gap is not a valid 7-bit-encoded number.");
        }
        var handling = handlingOfOldFormat ?? (UnknownTokenHandling)reader.ReadByte();
        if (!Enum.IsDefined(handling)) throw new ModelFormatException($"The token key map is damaged: unknown-token handling {(int)handling} is not one this library knows.");
        return new TokenKeyMap(keyCount, keys, handling);
    }
}
