using static Microsoft.ML.Quantized.Tests.Inference.EngineTestModels;

namespace Microsoft.ML.Quantized.Tests.Inference;

/// <summary>
/// Write/Read of the packed language model and classifier: a round trip scores bit-identically and writes the same bytes
/// again; every single flipped bit, every truncation, a foreign magic and another format version are rejected with a
/// <see cref="ModelFormatException"/> (and nothing else).
/// </summary>
[TestClass]
public sealed class PackedModelSerializationTests
{
    [TestMethod]
    [DataRow(RecurrentCellKind.Lstm, RecurrentNormalization.BatchPerStep, "uniform3-lsq-row", "uniform4-pow2@0.9", 2)]
    [DataRow(RecurrentCellKind.Gru, RecurrentNormalization.Layer, "alt2-row", "btq", 1)]
    [DataRow(RecurrentCellKind.Lstm, RecurrentNormalization.Layer, "bwn", "uniform3-lsq", 1)]
    [DataRow(RecurrentCellKind.Gru, RecurrentNormalization.Weight, "none", "none", 2)]
    public void LanguageModel_RoundTrip_ScoresBitIdentically(RecurrentCellKind cell, RecurrentNormalization normalization, string weights, string activations, int layers)
    {
        using var network = LanguageModel(Recurrent(cell, normalization, weights, activations, mixedSlopes: true, layers), seed: 3);
        var packed = PackedModelEncoder.Encode(network);
        var bytes = Bytes(packed.Write);
        var loaded = PackedLanguageModelNetwork.Read(Reader(bytes));
        CollectionAssert.AreEqual(bytes, Bytes(loaded.Write), "writing the loaded model gives the same bytes");

        var ids = Ids(4, 9);
        var (before, after) = (new LanguageModelScorer(packed), new LanguageModelScorer(loaded));
        var (h1, h2) = (new float[Hidden], new float[Hidden]);
        Assert.AreEqual(before.Score(ids, h1), after.Score(ids, h2));
        CollectionAssert.AreEqual(h1, h2);
        var (l1, l2) = (new float[VocabularySize], new float[VocabularySize]);
        before.Reset();
        after.Reset();
        foreach (int id in ids)
        {
            before.Step(id, l1);
            after.Step(id, l2);
            CollectionAssert.AreEqual(l1, l2);
        }
    }

    [TestMethod]
    [DataRow(SequenceClassifierInputKind.Tokens, SequencePooling.Last)]
    [DataRow(SequenceClassifierInputKind.Frames, SequencePooling.Mean)]
    [DataRow(SequenceClassifierInputKind.Tokens, SequencePooling.Max)]
    public void Classifier_RoundTrip_ScoresBitIdentically(SequenceClassifierInputKind kind, SequencePooling pooling)
    {
        var options = TwoLayerClassifierOptions();
        options.Pooling = pooling;
        using var network = Classifier(kind, options, seed: 6);
        var packed = PackedModelEncoder.Encode(network);
        var bytes = Bytes(packed.Write);
        var loaded = PackedSequenceClassifierNetwork.Read(Reader(bytes));
        CollectionAssert.AreEqual(bytes, Bytes(loaded.Write));
        Assert.AreEqual(kind, loaded.InputKind);
        Assert.AreEqual(pooling, loaded.Pooling);

        var (p1, p2) = (new float[3], new float[3]);
        var (before, after) = (new SequenceClassifierScorer(packed), new SequenceClassifierScorer(loaded));
        if (kind == SequenceClassifierInputKind.Tokens)
        {
            int[] tokens = [3, 1, 4, 1, 5, 9];
            before.Predict(tokens, p1);
            after.Predict(tokens, p2);
        }
        else
        {
            var frames = Enumerable.Range(0, 5 * FrameSize).Select(i => MathF.Sin(i)).ToArray();
            before.Predict(frames, p1);
            after.Predict(frames, p2);
        }
        CollectionAssert.AreEqual(p1, p2);
    }

    /// <summary>
    /// Format version 1 (before pooling was stored) as its layout was documented: the same fields without the pooling byte,
    /// written here independently of <see cref="PackedSequenceClassifierNetwork.Write"/>. It reads as last-step pooling
    /// and scores as the version-2 stream of the same network.
    /// </summary>
    [TestMethod]
    public void Classifier_FormatVersion1_ReadsAsLastStepPooling()
    {
        using var network = Classifier(SequenceClassifierInputKind.Tokens, TwoLayerClassifierOptions(), seed: 6);
        var packed = PackedModelEncoder.Encode(network);
        var version1 = Bytes(writer => PackedModelWriter.Write(writer, "QPSC"u8, 1, w =>
        {
            w.WriteByte((byte)packed.InputKind);
            w.WriteInt32(packed.InputSize);
            w.WriteInt32(packed.ClassCount);
            w.WriteInt32(packed.Embedding!.Columns);
            w.WriteMatrix(packed.Embedding);
            packed.Recurrent.Write(w);
            w.WriteMatrix(packed.Head);
            w.WriteSingles(packed.HeadBias);
        }));
        var loaded = PackedSequenceClassifierNetwork.Read(Reader(version1));
        Assert.AreEqual(SequencePooling.Last, loaded.Pooling);
        CollectionAssert.AreEqual(Bytes(packed.Write), Bytes(loaded.Write), "re-written as version 2, it equals the network's own version-2 stream");

        var older = (byte[])version1.Clone();
        older[4] = 0;
        StringAssert.Contains(Assert.ThrowsExactly<ModelFormatException>(() => PackedSequenceClassifierNetwork.Read(Reader(older))).Message, "versions 1 to 4");
    }

    /// <summary>
    /// Language-model format version 1 (before per-gate layer normalization) as its layout was documented, written here field
    /// by field: its layer normalization (kind 1, no group count) reads as the joint form, with the cell-state normalization,
    /// and scores as the joint network. The per-gate network writes kind 3 with its group count.
    /// </summary>
    [TestMethod]
    public void LanguageModel_FormatVersion1_ReadsLayerNormAsJoint()
    {
        using var network = LanguageModel(Recurrent(RecurrentCellKind.Lstm, RecurrentNormalization.Layer, "twn", layerNormForm: LayerNormForm.Joint), seed: 3);
        var packed = PackedModelEncoder.Encode(network);
        var version1 = Bytes(writer => PackedModelWriter.Write(writer, "QPLM"u8, 1, w =>
        {
            w.WriteInt32(packed.VocabularySize);
            w.WriteInt32(packed.Embedding.Columns);
            w.WriteMatrix(packed.Embedding);
            var layer = (PackedLstmLayer)packed.Recurrent.Layers[0];
            w.WriteByte((byte)RecurrentCellKind.Lstm);
            w.WriteInt32(1);
            w.WriteInt32(layer.InputSize);
            w.WriteInt32(layer.HiddenSize);
            foreach (var projection in new[] { layer.Input, layer.Hidden })
            {
                w.WriteMatrix(projection.Weight);
                WriteVersion1LayerNorm(w, (PackedLayerNorm)projection.Normalization!);
                w.WriteSingles(projection.Bias);
            }
            w.WriteSingles(layer.Slopes);
            // Five activation quantizers: the cell state had none before version 3.
            foreach (var activation in layer.Activations.Take(PackedLstmLayer.FloatCellStateActivationCount)) activation.Write(w);
            WriteVersion1LayerNorm(w, (PackedLayerNorm)layer.CellNormalization!);
            w.WriteMatrix(packed.Decoder);
            w.WriteSingles(packed.DecoderBias);
        }));
        var loaded = PackedLanguageModelNetwork.Read(Reader(version1));
        var loadedLayer = (PackedLstmLayer)loaded.Recurrent.Layers[0];
        Assert.AreEqual(1, ((PackedLayerNorm)loadedLayer.Input.Normalization!).Groups, "joint: one group of 4H");
        Assert.AreEqual(1, ((PackedLayerNorm)loadedLayer.Hidden.Normalization!).Groups);
        Assert.IsNotNull(loadedLayer.CellNormalization, "joint: the cell state is normalized");
        var ids = Ids(4, 9);
        var (h1, h2) = (new float[Hidden], new float[Hidden]);
        Assert.AreEqual(new LanguageModelScorer(packed).Score(ids, h1), new LanguageModelScorer(loaded).Score(ids, h2));
        CollectionAssert.AreEqual(h1, h2);
        var current = Bytes(packed.Write);
        Assert.AreEqual(PackedLanguageModelNetwork.FormatVersion, current[4]);
        Assert.IsTrue(loadedLayer.Activations[5].IsIdentity, "a version-1 cell state stays float");
        CollectionAssert.AreEqual(current, Bytes(loaded.Write), "re-written in the current version, it is the network's own stream");

        using var perGate = LanguageModel(Recurrent(RecurrentCellKind.Lstm, RecurrentNormalization.Layer, "twn"), seed: 3);
        var perGateLayer = (PackedLstmLayer)PackedLanguageModelNetwork.Read(Reader(Bytes(PackedModelEncoder.Encode(perGate).Write))).Recurrent.Layers[0];
        Assert.AreEqual(4, ((PackedLayerNorm)perGateLayer.Input.Normalization!).Groups, "per gate: 4 groups of H");
        Assert.IsNull(perGateLayer.CellNormalization, "per gate: no cell-state normalization");

        static void WriteVersion1LayerNorm(PackedModelWriter w, PackedLayerNorm norm)
        {
            w.WriteByte(1);
            w.WriteInt32(norm.Features);
            w.WriteSingle(norm.Epsilon);
            w.WriteSingles(norm.Gain);
            w.WriteSingles(norm.Bias);
        }
    }

    [TestMethod]
    public void LanguageModel_EveryFlippedBit_IsRejected()
    {
        using var network = LanguageModel(Recurrent(RecurrentCellKind.Lstm, RecurrentNormalization.BatchPerStep, "twn", "uniform3-lsq", true, 2), seed: 5);
        var bytes = Bytes(PackedModelEncoder.Encode(network).Write);
        AssertEveryFlipRejected(bytes, b => PackedLanguageModelNetwork.Read(Reader(b)));
    }

    [TestMethod]
    public void Classifier_EveryFlippedBit_IsRejected()
    {
        using var network = Classifier(SequenceClassifierInputKind.Tokens, TwoLayerClassifierOptions(), seed: 6);
        var bytes = Bytes(PackedModelEncoder.Encode(network).Write);
        AssertEveryFlipRejected(bytes, b => PackedSequenceClassifierNetwork.Read(Reader(b)));
    }

    [TestMethod]
    public void EveryTruncation_IsRejected()
    {
        using var network = LanguageModel(Recurrent(RecurrentCellKind.Gru, RecurrentNormalization.Layer, "uniform4", "btq"), seed: 5);
        var bytes = Bytes(PackedModelEncoder.Encode(network).Write);
        for (int length = 0; length < bytes.Length; length++)
        {
            var e = Assert.ThrowsExactly<ModelFormatException>(() => PackedLanguageModelNetwork.Read(Reader(bytes[..length])), $"truncated to {length} of {bytes.Length} bytes");
            Assert.IsTrue(e.Message.Contains("truncated") || e.Message.Contains("damaged"), $"truncated to {length}: {e.Message}");
        }
    }

    [TestMethod]
    public void ForeignOrNewerStreams_GetAClearMessage()
    {
        using var network = LanguageModel(Recurrent(RecurrentCellKind.Lstm, RecurrentNormalization.None, "bc"), seed: 5);
        var bytes = Bytes(PackedModelEncoder.Encode(network).Write);

        var e = Assert.ThrowsExactly<ModelFormatException>(() => PackedSequenceClassifierNetwork.Read(Reader(bytes)));
        StringAssert.Contains(e.Message, "Not a packed sequence classifier");

        var newer = (byte[])bytes.Clone();
        newer[4] = PackedLanguageModelNetwork.FormatVersion + 1;
        e = Assert.ThrowsExactly<ModelFormatException>(() => PackedLanguageModelNetwork.Read(Reader(newer)));
        StringAssert.Contains(e.Message, $"format version {PackedLanguageModelNetwork.FormatVersion + 1}");

        var damagedBias = (byte[])bytes.Clone();
        damagedBias[^6] ^= 0x01; // inside the decoder bias, just before the checksum
        e = Assert.ThrowsExactly<ModelFormatException>(() => PackedLanguageModelNetwork.Read(Reader(damagedBias)));
        StringAssert.Contains(e.Message, "checksum");
    }

    private static SequenceClassifierOptions TwoLayerClassifierOptions() => new()
    {
        Recurrent = Recurrent(RecurrentCellKind.Gru, RecurrentNormalization.BatchShared, "ttq-row", "btq", mixedSlopes: true, layers: 2),
        ClassCount = 3,
        QuantizeEmbeddingAndHead = true,
    };

    /// <summary>Flips bit (i mod 8) of byte i, for every i; each damaged stream must raise <see cref="ModelFormatException"/>.</summary>
    private static void AssertEveryFlipRejected(byte[] bytes, Action<byte[]> read)
    {
        var damaged = (byte[])bytes.Clone();
        for (int i = 0; i < bytes.Length; i++)
        {
            damaged[i] ^= (byte)(1 << (i % 8));
            try
            {
                read(damaged);
                Assert.Fail($"flipping bit {i % 8} of byte {i} of {bytes.Length} went unnoticed");
            }
            catch (ModelFormatException)
            {
            }
            damaged[i] = bytes[i];
        }
    }

    private static byte[] Bytes(Action<BinaryWriter> write)
    {
        using var stream = new MemoryStream();
        using (var writer = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true)) write(writer);
        return stream.ToArray();
    }

    private static BinaryReader Reader(byte[] bytes) => new(new MemoryStream(bytes));
}
