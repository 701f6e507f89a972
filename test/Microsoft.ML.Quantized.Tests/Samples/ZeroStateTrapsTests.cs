using Microsoft.ML.Quantized.Samples.Reproduction;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized.Tests.Samples;

/// <summary>
/// The zero-state trap probes against the same scores computed one token at a time (the network stepped with its state
/// carried by hand), and the <c>zero-state</c> command end to end on a tiny run.
/// </summary>
[TestClass]
public sealed class ZeroStateTrapsTests
{
    private const int Vocabulary = 5;

    [TestMethod]
    public void Tail_cross_entropy_by_first_token_matches_stepping_each_sequence_token_by_token()
    {
        using var network = TinyNetwork(layers: 2);
        int[] passage = { 1, 3, 0, 4, 2, 2, 1 };
        var tails = ZeroStateTraps.TailCrossEntropyByFirstToken(network, passage, tailStart: 3);
        Assert.HasCount(Vocabulary, tails);
        for (int first = 0; first < Vocabulary; first++)
        {
            // Token by token from the zero state: step k sees [first, passage...][k] and predicts passage[k].
            var losses = Step(network, new[] { first }.Concat(passage).ToArray(), null).Losses;
            Assert.AreEqual(losses.Skip(3).Average(), tails[first], 1e-5, $"first token {first}");
        }
        Assert.AreNotEqual(tails[0], tails[1], 1e-7, "the first token changes the state the tail is scored from");
    }

    [TestMethod]
    [DataRow(RecurrentCellKind.Lstm)]
    [DataRow(RecurrentCellKind.Gru)]
    public void Continuing_with_a_layer_zeroed_matches_stepping_from_that_state(RecurrentCellKind cell)
    {
        using var network = TinyNetwork(layers: 2, cell);
        int[] passage = { 2, 0, 1, 3, 3, 4, 0, 2 };
        const int first = 4, split = 3;
        // Unchanged state: the same as the unbroken sequence's predictions of passage[split + 1..].
        var unbroken = Step(network, new[] { first }.Concat(passage).ToArray(), null).Losses;
        Assert.AreEqual(unbroken.Skip(split + 1).Average(), ZeroStateTraps.ContinuedWithLayerZeroed(network, first, passage, split, -1), 1e-5);
        for (int layer = 0; layer < 2; layer++)
        {
            var (_, h, c) = Step(network, new[] { first }.Concat(passage.Take(split)).ToArray(), null);
            Array.Clear(h[layer]);
            if (c is not null) Array.Clear(c[layer]);
            var expected = Step(network, passage.Skip(split).ToArray(), (h, c)).Losses.Average();
            Assert.AreEqual(expected, ZeroStateTraps.ContinuedWithLayerZeroed(network, first, passage, split, layer), 1e-5, $"layer {layer} zeroed");
        }
    }

    [TestMethod]
    public void Stream_cross_entropy_matches_validation_carried_and_each_window_stepped_from_zero_when_reset()
    {
        using var network = TinyNetwork(layers: 1);
        var random = new Random(5);
        var tokens = Enumerable.Range(0, 47).Select(_ => random.Next(Vocabulary)).ToArray();
        const int streams = 3, window = 4;
        // Carried: the training loop's own validation score.
        var carried = ZeroStateTraps.StreamCrossEntropy(network, tokens, streams, window, resetEachWindow: false);
        using (var batcher = new TokenStreamBatcher(tokens, streams, window, CPU))
        using (no_grad())
            Assert.AreEqual(LanguageModelTask.MeanCrossEntropy(network, batcher), carried.Mean, 1e-5);
        // Stream s is tokens[s * 15 .. s * 15 + 15): carried, its 14 predictions from one zero state; reset, windows of 4
        // predictions (4, 4, 4, 2), each from the zero state.
        var reset = ZeroStateTraps.StreamCrossEntropy(network, tokens, streams, window, resetEachWindow: true);
        int length = tokens.Length / streams;
        for (int s = 0; s < streams; s++)
        {
            var stream = tokens.Skip(s * length).Take(length).ToArray();
            Assert.AreEqual(Step(network, stream, null).Losses.Average(), carried.PerStream[s], 1e-5, $"stream {s}, carried");
            var windows = Enumerable.Range(0, 4).SelectMany(w => Step(network, stream.Skip(w * window).Take(window + 1).ToArray(), null).Losses);
            Assert.AreEqual(windows.Average(), reset.PerStream[s], 1e-5, $"stream {s}, reset");
        }
        Assert.AreEqual(reset.PerStream.Average(), reset.Mean, 1e-12);
        Assert.AreNotEqual(carried.Mean, reset.Mean, 1e-7, "resetting changes the score");
    }

    [TestMethod]
    public void The_command_scores_every_epoch_and_removes_its_checkpoint()
    {
        var folder = Directory.CreateTempSubdirectory("zero-state-");
        try
        {
            var markdown = Path.Combine(folder.FullName, "reproduction.md");
            File.WriteAllText(markdown, "intro\n");
            var checkpoints = Path.Combine(folder.FullName, "checkpoints");
            var (code, output) = SamplesCli.Run("zero-state", "--epochs", "2", "--max-steps", "2", "--hidden", "8", "--checkpoints", checkpoints, "--out", markdown);
            Assert.AreEqual(0, code, output);
            var text = File.ReadAllText(markdown);
            StringAssert.Contains(text, "<!-- bench:zero-state-lstm2x8-twn-layer-pergate-seed2 -->");
            StringAssert.Contains(text, "\n| 1 | ");
            StringAssert.Contains(text, "\n| 2 | ");
            Assert.IsFalse(Directory.Exists(Path.Combine(checkpoints, "lstm2x8-twn-layer-pergate-seed2")), "the checkpoint is removed");
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    [TestMethod]
    public void The_command_trains_a_gru_when_asked_and_names_it()
    {
        var folder = Directory.CreateTempSubdirectory("zero-state-gru-");
        try
        {
            var markdown = Path.Combine(folder.FullName, "reproduction.md");
            var (code, output) = SamplesCli.Run("zero-state", "--cell", "gru", "--epochs", "1", "--max-steps", "2", "--hidden", "8",
                "--checkpoints", Path.Combine(folder.FullName, "checkpoints"), "--out", markdown);
            Assert.AreEqual(0, code, output);
            var text = File.ReadAllText(markdown);
            StringAssert.Contains(text, "<!-- bench:zero-state-gru2x8-twn-layer-pergate-seed2 -->");
            StringAssert.Contains(text, "## Zero-state traps: character LM, GRU 2 x 8, twn weights");
            StringAssert.Contains(text, "zero-state --cell gru --layers 2 --hidden 8");
            StringAssert.Contains(text, "with each layer's h set to zero");
            StringAssert.Contains(text, "\n| 1 | ");
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    [TestMethod]
    [DataRow("--cell", "rnn", "error: --cell: unknown cell 'rnn' (lstm, gru).")]
    [DataRow("--norm", "group", "error: --norm: unknown normalization 'group'")]
    public void An_unknown_name_fails_with_one_line_naming_the_option(string option, string value, string expected)
    {
        var (code, output) = SamplesCli.Run("zero-state", option, value, "--out", Path.Combine(Path.GetTempPath(), "zero-state-never-written.md"));
        Assert.AreEqual(1, code, output);
        StringAssert.StartsWith(output, expected);
        Assert.DoesNotContain("   at ", output, "no stack trace");
    }

    /// <summary>A float LSTM (or <paramref name="cell"/>) language model over <see cref="Vocabulary"/> tokens, embedding 3, hidden 4, fixed seed.</summary>
    private static LanguageModelNetwork TinyNetwork(int layers, RecurrentCellKind cell = RecurrentCellKind.Lstm)
    {
        manual_seed(11);
        var network = new LanguageModelNetwork(Vocabulary, new LanguageModelOptions
        {
            EmbeddingSize = 3,
            Recurrent = new QuantizedRecurrentOptions { Cell = cell, Layers = layers, HiddenSize = 4 },
        });
        network.eval();
        return network;
    }

    /// <summary>
    /// Feeds <paramref name="sequence"/> one token at a time with the state carried by hand from <paramref name="start"/>
    /// (null: zero): the cross-entropy of predicting <paramref name="sequence"/>[k + 1] at each step k, and the state after
    /// the last token as arrays [layer][unit] (C null for a GRU).
    /// </summary>
    private static (List<double> Losses, float[][] H, float[][]? C) Step(LanguageModelNetwork network, int[] sequence, (float[][] H, float[][]? C)? start)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        RecurrentState? state = start is { } s ? ToState(s) : null;
        var losses = new List<double>();
        for (int k = 0; k < sequence.Length; k++)
        {
            var (logits, next) = network.Forward(tensor(new long[] { sequence[k] }).reshape(1, 1), state);
            state = next;
            if (k + 1 < sequence.Length) losses.Add(-logits.reshape(-1).log_softmax(0)[sequence[k + 1]].item<float>());
        }
        float[][] Rows(Tensor t) => Enumerable.Range(0, (int)t.shape[0]).Select(l => t[l, 0].data<float>().ToArray()).ToArray();
        return (losses, Rows(state!.H), state.C is null ? null : Rows(state.C));
    }

    private static RecurrentState ToState((float[][] H, float[][]? C) s)
    {
        Tensor Stack(float[][] rows) => stack(rows.Select(r => tensor(r).reshape(1, -1)).ToArray());
        return new RecurrentState(Stack(s.H), s.C is null ? null : Stack(s.C));
    }
}
