using Microsoft.ML.Runtime;

namespace Microsoft.ML.Quantized;

/// <summary>
/// Maps the keys of a token column to the language model's token ids: the keys that occur in the training data,
/// in key order, get ids 0..K-1, and <c>&lt;eos&gt;</c> (the separator between rows) gets id K. Only observed keys
/// get an embedding and a decoder row, so a character column (65,535 possible keys) costs what its alphabet costs.
/// </summary>
internal sealed class TokenKeyMap
{
    private readonly Dictionary<ulong, int> _ids;

    public TokenKeyMap(ulong keyCount, ulong[] keys)
    {
        KeyCount = keyCount;
        Keys = keys;
        _ids = new Dictionary<ulong, int>(keys.Length);
        for (int i = 0; i < keys.Length; i++)
        {
            if (keys[i] == 0 || keys[i] > keyCount || !_ids.TryAdd(keys[i], i))
                throw new ModelFormatException($"The token key map is damaged: key {keys[i]} is out of 1..{keyCount} or repeated.");
        }
    }

    /// <summary>Key values of the column's key type (keys run 1..KeyCount; 0 is missing).</summary>
    public ulong KeyCount { get; }

    /// <summary>The keys the model knows, by token id.</summary>
    public ulong[] Keys { get; }

    /// <summary>Token id of the row separator.</summary>
    public int EndOfSequenceId => Keys.Length;

    /// <summary>Token ids: the known keys plus <c>&lt;eos&gt;</c>.</summary>
    public int VocabularySize => Keys.Length + 1;

    public bool TryGetId(ulong key, out int id) => _ids.TryGetValue(key, out id);

    /// <summary>
    /// Appends the ids of a row's keys to <paramref name="ids"/>; returns how many were appended. A missing, out of
    /// range or never-trained key is dropped when <paramref name="skipUnknown"/> is set, and an error naming the
    /// column, row and position otherwise.
    /// </summary>
    public int AppendRow(IExceptionContext ectx, ReadOnlySpan<ulong> keys, List<long> ids, string column, long row, bool skipUnknown)
    {
        int appended = 0;
        for (int i = 0; i < keys.Length; i++)
        {
            if (TryGetId(keys[i], out int id))
            {
                ids.Add(id);
                appended++;
            }
            else if (!skipUnknown)
            {
                throw ectx.Except(UnknownKeyMessage(keys[i], column, row, i));
            }
        }
        return appended;
    }

    public string UnknownKeyMessage(ulong key, string column, long row, int position)
    {
        string what = key == 0
            ? "key 0, a missing value (MapValueToKey gives it to values it was not fitted on)"
            : key > KeyCount
                ? $"key {key}, outside the column's key range 1..{KeyCount}"
                : $"key {key}, which never occurred in the training data";
        return $"Column '{column}', row {row}, token {position}: {what}. The quantized language model needs every token to be a key it was trained on; " +
               "fit the key mapping and the model on the same data, or set SkipUnknownKeys = true to drop such tokens.";
    }

    public void Save(BinaryWriter writer)
    {
        writer.Write(KeyCount);
        writer.Write(Keys.Length);
        foreach (var k in Keys) writer.Write(k);
    }

    public static TokenKeyMap Load(BinaryReader reader)
    {
        ulong keyCount = reader.ReadUInt64();
        int n = reader.ReadInt32();
        if (n < 0 || (ulong)n > keyCount) throw new ModelFormatException($"The token key map is damaged: {n} keys for a key type of {keyCount} values.");
        var keys = new ulong[n];
        for (int i = 0; i < n; i++) keys[i] = reader.ReadUInt64();
        return new TokenKeyMap(keyCount, keys);
    }
}
