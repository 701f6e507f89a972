using System.Text;

namespace Microsoft.ML.Quantized;

/// <summary>
/// Maps tokens (characters or whitespace-separated words) to dense ids. Word vocabularies hold the most
/// frequent words plus <c>&lt;unk&gt;</c>; words are separated by whitespace and every line ends with
/// <c>&lt;eos&gt;</c> (the PTB convention). Character vocabularies hold every character seen, newline included.
/// </summary>
public sealed class Vocabulary
{
    /// <summary>The unknown-word token of word vocabularies.</summary>
    public const string UnknownToken = "<unk>";

    /// <summary>The end-of-sentence token appended to each line of word-level text.</summary>
    public const string EndOfSentenceToken = "<eos>";

    private readonly Dictionary<string, int> _ids;

    private Vocabulary(IReadOnlyList<string> tokens, bool isCharacterLevel)
    {
        if (tokens.Count == 0) throw new ArgumentException("A vocabulary needs at least one token.", nameof(tokens));
        Tokens = tokens;
        IsCharacterLevel = isCharacterLevel;
        _ids = new Dictionary<string, int>(tokens.Count, StringComparer.Ordinal);
        for (int i = 0; i < tokens.Count; i++)
        {
            if (!_ids.TryAdd(tokens[i], i))
                throw new ArgumentException($"Token '{tokens[i]}' appears twice in the vocabulary.", nameof(tokens));
        }
        UnknownId = _ids.TryGetValue(UnknownToken, out var unk) ? unk : -1;
    }

    /// <summary>Tokens by id.</summary>
    public IReadOnlyList<string> Tokens { get; }

    /// <summary>Number of tokens.</summary>
    public int Count => Tokens.Count;

    /// <summary>True for a character vocabulary, false for words.</summary>
    public bool IsCharacterLevel { get; }

    /// <summary>Id of <c>&lt;unk&gt;</c>, or -1 when the vocabulary has none (character vocabularies).</summary>
    public int UnknownId { get; }

    /// <summary>Every distinct character of <paramref name="text"/>, in ordinal order.</summary>
    public static Vocabulary FromCharacters(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (text.Length == 0) throw new ArgumentException("The text is empty: a character vocabulary needs at least one character.", nameof(text));
        var chars = text.Distinct().Order().Select(c => c.ToString()).ToList();
        return new Vocabulary(chars, isCharacterLevel: true);
    }

    /// <summary>
    /// The <paramref name="maxSize"/> - 1 most frequent words of <paramref name="text"/> (ties broken
    /// ordinally), plus <c>&lt;eos&gt;</c> and <c>&lt;unk&gt;</c>.
    /// </summary>
    public static Vocabulary FromWords(string text, int maxSize = 10_000)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (maxSize < 3) throw new ArgumentOutOfRangeException(nameof(maxSize), maxSize, "maxSize must be at least 3 (<unk>, <eos> and one word).");
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var line in text.Split('\n'))
        {
            foreach (var word in SplitWords(line)) counts[word] = counts.GetValueOrDefault(word) + 1;
            counts[EndOfSentenceToken] = counts.GetValueOrDefault(EndOfSentenceToken) + 1;
        }
        counts.Remove(UnknownToken);
        var words = counts.OrderByDescending(kv => kv.Value).ThenBy(kv => kv.Key, StringComparer.Ordinal)
            .Take(maxSize - 1).Select(kv => kv.Key).ToList();
        words.Add(UnknownToken);
        return new Vocabulary(words, isCharacterLevel: false);
    }

    /// <summary>Rebuilds a vocabulary from its tokens (as stored in a model file).</summary>
    public static Vocabulary FromTokens(IReadOnlyList<string> tokens, bool isCharacterLevel) => new(tokens.ToArray(), isCharacterLevel);

    /// <summary>Throws when an id of <paramref name="tokens"/> (the argument <paramref name="name"/>) is outside this vocabulary.</summary>
    /// <exception cref="ArgumentOutOfRangeException">An id is outside [0, <see cref="Count"/>).</exception>
    internal void CheckIds(int[] tokens, string name)
    {
        for (int i = 0; i < tokens.Length; i++)
        {
            if ((uint)tokens[i] >= (uint)Count)
                throw new ArgumentOutOfRangeException(name, tokens[i], $"{name}[{i}] = {tokens[i]} is outside the vocabulary [0, {Count}).");
        }
    }

    /// <summary>Id of a token; unknown words map to <c>&lt;unk&gt;</c>.</summary>
    /// <exception cref="KeyNotFoundException">The token is not in a vocabulary that has no <c>&lt;unk&gt;</c>.</exception>
    public int IdOf(string token)
    {
        if (_ids.TryGetValue(token, out var id)) return id;
        if (UnknownId >= 0) return UnknownId;
        throw new KeyNotFoundException($"Token '{token}' is not in the {(IsCharacterLevel ? "character" : "word")} vocabulary of {Count} tokens, which has no {UnknownToken}.");
    }

    /// <summary>
    /// Encodes text: characters one by one, or words with <c>&lt;eos&gt;</c> at each line end.
    /// Characters not in a character vocabulary are skipped when <paramref name="skipUnknownCharacters"/> is true.
    /// </summary>
    public int[] Encode(string text, bool skipUnknownCharacters = false)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>(text.Length);
        if (IsCharacterLevel)
        {
            foreach (var c in text)
            {
                if (_ids.TryGetValue(c.ToString(), out var id)) ids.Add(id);
                else if (!skipUnknownCharacters)
                    throw new KeyNotFoundException($"Character U+{(int)c:X4} '{c}' is not in the character vocabulary of {Count} characters; pass skipUnknownCharacters: true to drop such characters.");
            }
            return ids.ToArray();
        }
        var lines = text.Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            if (i == lines.Length - 1 && lines[i].Length == 0) break; // text ends with a newline
            foreach (var word in SplitWords(lines[i])) ids.Add(IdOf(word));
            ids.Add(IdOf(EndOfSentenceToken));
        }
        return ids.ToArray();
    }

    /// <summary>Decodes ids back to text (words joined by spaces, <c>&lt;eos&gt;</c> as a newline).</summary>
    public string Decode(IEnumerable<int> ids)
    {
        var sb = new StringBuilder();
        foreach (var id in ids)
        {
            if ((uint)id >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(ids), id, $"Token id must be in [0, {Count}).");
            var token = Tokens[id];
            if (IsCharacterLevel) sb.Append(token);
            else if (token == EndOfSentenceToken) sb.Append('\n');
            else
            {
                if (sb.Length > 0 && sb[^1] != '\n') sb.Append(' ');
                sb.Append(token);
            }
        }
        return sb.ToString();
    }

    private static IEnumerable<string> SplitWords(string line) =>
        line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
}
