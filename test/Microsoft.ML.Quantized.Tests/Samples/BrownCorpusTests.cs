using Microsoft.ML.Quantized.Samples;

namespace Microsoft.ML.Quantized.Tests.Samples;

[TestClass]
public sealed class BrownCorpusTests
{
    private string _root = "";

    [TestInitialize]
    public void CreateFakePackage()
    {
        _root = Path.Combine(Path.GetTempPath(), "brown-test-" + Guid.NewGuid().ToString("N"));
        string package = Path.Combine(_root, "package");
        Directory.CreateDirectory(package);
        // Train files ca01..ca08 (indices 0..7), valid ca09 (index 8), test ca10 (index 9).
        File.WriteAllText(Path.Combine(package, "ca01"),
            "\n\n\tThe/at Cat/nn sat/vbd ./.\n\n\n\tthe/at dog/nn ,/, 1,200/cd dogs/nns 3-1/2/cd ''/'' Jr./np\n");
        File.WriteAllText(Path.Combine(package, "ca02"), "\tthe/at cat/nn 's/$\n  \t  \n\t--/-- ,/,\n");
        for (int i = 3; i <= 8; i++) File.WriteAllText(Path.Combine(package, $"ca0{i}"), "\n");
        File.WriteAllText(Path.Combine(package, "ca09"), "\tThe/at DOG/nn sat/vbd 42/cd 1st/od\n");
        File.WriteAllText(Path.Combine(package, "ca10"), "\tA/at cat/nn/x 7:30/cd Hello\n");
        // Not corpus files: must be ignored.
        File.WriteAllText(Path.Combine(package, "README"), "zzz/nn zzz/nn zzz/nn zzz/nn\n");
        File.WriteAllText(Path.Combine(package, "cs01"), "zzz/nn zzz/nn zzz/nn zzz/nn\n");
        File.WriteAllText(Path.Combine(package, "cats.txt"), "zzz/nn zzz/nn zzz/nn zzz/nn\n");
    }

    [TestCleanup]
    public void DeleteFakePackage()
    {
        if (Directory.Exists(_root)) Directory.Delete(_root, recursive: true);
    }

    [TestMethod]
    public void Prepare_SplitsLowercasesDropsPunctuationMapsNumbersAndUnks()
    {
        string output = Path.Combine(_root, "out");
        var log = new StringWriter();
        // Vocabulary of 5 = 4 train words + <unk>. Train counts: the 3, cat 2, N 2, then sat, dog, dogs, jr., 's once each;
        // cat and N tie and sat wins the tie among the singletons by first occurrence.
        BrownCorpus.Prepare(_root, output, log, vocabularySize: 5); // _root holds the package as package/

        Assert.AreEqual("the cat sat\nthe <unk> N <unk> N <unk>\nthe cat <unk>\n", ReadExact(output, "train"));
        Assert.AreEqual("the <unk> sat N <unk>\n", ReadExact(output, "valid"));
        Assert.AreEqual("<unk> <unk> N <unk>\n", ReadExact(output, "test"));
        StringAssert.Contains(log.ToString(), "10 corpus files");
        Assert.IsFalse(File.Exists(Path.Combine(output, "brown.train.txt.tmp")));
    }

    [TestMethod]
    public void Prepare_IsRepeatable()
    {
        string output = Path.Combine(_root, "out");
        BrownCorpus.Prepare(Path.Combine(_root, "package"), output, TextWriter.Null, 5);
        string first = ReadExact(output, "train");
        BrownCorpus.Prepare(Path.Combine(_root, "package"), output, TextWriter.Null, 5);
        Assert.AreEqual(first, ReadExact(output, "train"));
    }

    [TestMethod]
    public void Vocabulary_TiesBrokenByFirstOccurrence()
    {
        List<string>[] train = [["b", "a", "c"], ["a", "c", "b", "d"]];
        // Counts: b 2, a 2, c 2, d 1; first occurrences b, a, c, d.
        CollectionAssert.AreEquivalent(new[] { "b", "a" }, BrownCorpus.BuildVocabulary(train, 3).ToArray());
        CollectionAssert.AreEquivalent(new[] { "b" }, BrownCorpus.BuildVocabulary(train, 2).ToArray());
        Assert.AreEqual(0, BrownCorpus.BuildVocabulary(train, 1).Count);
    }

    [TestMethod]
    public void NormalizeLine_Rules()
    {
        CollectionAssert.AreEqual(
            new[] { "atlanta's", "N", "N", "N", "N", "1st", "u.s.", "1/2-inch", "half-hearted" },
            BrownCorpus.NormalizeLine("\tAtlanta's/np$ 1,200/cd 3.5/cd 7:30/cd 1-1/2/cd 1st/od U.S./np ``/`` 1/2-inch/jj Half-hearted/jj ;/. --/--"));
        Assert.AreEqual(0, BrownCorpus.NormalizeLine("   \t ").Count);
    }

    [TestMethod]
    public void SplitOf_EveryTenthFile()
    {
        CollectionAssert.AreEqual(new[] { 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2 },
            Enumerable.Range(0, 20).Select(BrownCorpus.SplitOf).ToArray());
    }

    [TestMethod]
    public void MissingFolder_ClearError()
    {
        Assert.ThrowsExactly<DirectoryNotFoundException>(() =>
            BrownCorpus.Prepare(Path.Combine(_root, "nope"), Path.Combine(_root, "out"), TextWriter.Null));
        Directory.CreateDirectory(Path.Combine(_root, "empty"));
        Assert.ThrowsExactly<FileNotFoundException>(() =>
            BrownCorpus.Prepare(Path.Combine(_root, "empty"), Path.Combine(_root, "out"), TextWriter.Null));
    }

    private static string ReadExact(string dir, string split)
    {
        var bytes = File.ReadAllBytes(Path.Combine(dir, $"brown.{split}.txt"));
        Assert.IsFalse(bytes.Length >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB, "no BOM");
        return System.Text.Encoding.UTF8.GetString(bytes);
    }
}
