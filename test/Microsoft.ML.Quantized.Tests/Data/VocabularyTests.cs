namespace Microsoft.ML.Quantized.Tests;

[TestClass]
public sealed class VocabularyTests
{
    [TestMethod]
    public void CharacterVocabularyEncodesAndDecodesEveryCharacter()
    {
        var vocabulary = Vocabulary.FromCharacters("abca\n");
        CollectionAssert.AreEqual(new[] { "\n", "a", "b", "c" }, vocabulary.Tokens.ToArray());
        CollectionAssert.AreEqual(new[] { 1, 2, 3, 1, 0 }, vocabulary.Encode("abca\n"));
        Assert.AreEqual("cab", vocabulary.Decode(new[] { 3, 1, 2 }));
        Assert.AreEqual(-1, vocabulary.UnknownId);
    }

    [TestMethod]
    public void CharacterVocabularyRejectsOrSkipsUnknownCharacters()
    {
        var vocabulary = Vocabulary.FromCharacters("ab");
        var error = Assert.ThrowsExactly<KeyNotFoundException>(() => vocabulary.Encode("abz"));
        StringAssert.Contains(error.Message, "'z'");
        CollectionAssert.AreEqual(new[] { 0, 1 }, vocabulary.Encode("azb", skipUnknownCharacters: true));
    }

    [TestMethod]
    public void WordVocabularyKeepsMostFrequentWordsAndMapsTheRestToUnk()
    {
        var vocabulary = Vocabulary.FromWords("the cat\nthe dog\nthe cat sat\n", maxSize: 4);
        // counts: the 3, <eos> 3, cat 2, dog 1, sat 1 -> keep 3 most frequent (ties ordinal), then <unk>
        CollectionAssert.AreEqual(new[] { "<eos>", "the", "cat", "<unk>" }, vocabulary.Tokens.ToArray());
        CollectionAssert.AreEqual(new[] { 1, 3, 0 }, vocabulary.Encode("the dog\n"));
        Assert.AreEqual("the cat\nthe", vocabulary.Decode(new[] { 1, 2, 0, 1 }));
    }

    [TestMethod]
    public void WordVocabularyValidatesItsSize()
    {
        var error = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => Vocabulary.FromWords("a b", maxSize: 2));
        StringAssert.Contains(error.Message, "maxSize");
    }
}
