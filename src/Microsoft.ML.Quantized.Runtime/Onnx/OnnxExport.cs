namespace Microsoft.ML.Quantized;

/// <summary>
/// Writes the scoring graphs of the packed networks as ONNX (opset <see cref="OnnxExportOptions.Opset"/>), with the same
/// inputs and outputs for both weight formats:
/// <list type="bullet">
/// <item>Sequence classifier: input <c>tokens</c> (int64 [batch, time], ids in [0, vocabulary)) or <c>frames</c> (float
/// [batch, time, frame size]), and <c>lengths</c> (int64 [batch], each in 1..time: the steps of each row that are read;
/// the rest is padding); output <c>probabilities</c> (float [batch, classes]: the softmax of the head of each row's hidden
/// states pooled over its steps as the model pools them: the last step's, or their mean or maximum).</item>
/// <item>Language model: input <c>tokens</c> (int64 [batch, time]); output <c>logits</c> (float [batch, time, vocabulary]:
/// the next-token logits after each step, from the zero state), or <c>log_probabilities</c> with
/// <see cref="OnnxExportOptions.LogProbabilities"/>.</item>
/// </list>
/// Embedding (Gather), recurrent stack (<see cref="OnnxRecurrentExport"/>: ONNX LSTM/GRU or Scan), head or decoder (Gemm).
/// The pieces (<see cref="Classifier"/>, <see cref="Logits"/>, <see cref="KeysToTokens"/>) also build the ML.NET
/// exports' graphs.
/// </summary>
internal static class OnnxExport
{
    private const string Batch = "batch", Time = "time";

    /// <summary>
    /// Writes the classifier's graph to <paramref name="stream"/>. With <paramref name="keyToToken"/> (token input), the graph
    /// reads ML.NET key values as <c>keys</c> (int64 [batch, time]; 0 is missing) and maps them to token ids through that
    /// table (indexed by key) before the embedding.
    /// </summary>
    /// <param name="network">The classifier.</param>
    /// <param name="options">The weight format.</param>
    /// <param name="stream">Where to write.</param>
    /// <param name="keyToToken">The key-to-token table, for a graph that reads ML.NET keys.</param>
    /// <param name="emptyRowProbabilities">The probabilities of a row with length 0 (ML.NET's class prior); without them
    /// such a row gets the head of the zero state.</param>
    public static void Write(PackedSequenceClassifierNetwork network, OnnxExportOptions options, Stream stream, long[]? keyToToken = null, float[]? emptyRowProbabilities = null)
    {
        var graph = new OnnxGraph();
        string input;
        if (network.InputKind == SequenceClassifierInputKind.Frames)
        {
            graph.AddInput(input = "frames", OnnxGraph.FloatType, Batch, Time, (long)network.InputSize);
        }
        else if (keyToToken is null) graph.AddInput(input = "tokens", OnnxGraph.Int64Type, Batch, Time);
        else
        {
            graph.AddInput("keys", OnnxGraph.Int64Type, Batch, Time);
            input = KeysToTokens(graph, "keys", keyToToken);
        }
        graph.AddInput("lengths", OnnxGraph.Int64Type, Batch);
        var probabilities = Classifier(graph, network, Quantized(options, graph), input, "lengths");
        graph.AddNode("Identity", [emptyRowProbabilities is null ? probabilities : ForEmptyRows(graph, probabilities, "lengths", emptyRowProbabilities)], ["probabilities"]);
        graph.AddOutput("probabilities", OnnxGraph.FloatType, Batch, (long)network.ClassCount);
        graph.Write(stream, "quantized_sequence_classifier", Describe(network.Recurrent, "sequence classifier", options));
    }

    /// <summary>Writes the language model's graph to <paramref name="stream"/>.</summary>
    public static void Write(PackedLanguageModelNetwork network, OnnxExportOptions options, Stream stream)
    {
        var graph = new OnnxGraph();
        bool quantized = Quantized(options, graph);
        graph.AddInput("tokens", OnnxGraph.Int64Type, Batch, Time);
        var (sequence, _) = Recurrent(graph, network.Embedding, network.Recurrent, "tokens", "", quantized);
        var logits = Logits(graph, network, sequence, "tokens", quantized);
        string output = options.LogProbabilities ? "log_probabilities" : "logits";
        graph.AddNode(options.LogProbabilities ? "LogSoftmax" : "Identity", [logits], [output], options.LogProbabilities ? [OnnxAttribute.Int("axis", -1)] : []);
        graph.AddOutput(output, OnnxGraph.FloatType, Batch, Time, (long)network.VocabularySize);
        graph.Write(stream, "quantized_language_model", Describe(network.Recurrent, "language model", options));
    }

    /// <summary>
    /// Writes the ML.NET language-model transformer's graph: inputs <c>keys</c> (int64 [batch, time], ML.NET key values, 0
    /// missing) mapped to token ids by <paramref name="keyToToken"/>, and <c>lengths</c> (int64 [batch], each row's tokens;
    /// the rest is padding). Each row is read as the transformer reads it, <c>&lt;eos&gt;</c> then its tokens, from the zero
    /// state. Outputs <paramref name="featuresName"/> (float [batch, H], the last layer's state after the row's last token)
    /// and <paramref name="perplexityName"/> (float [batch], exp of the mean cross-entropy of each token given the ones
    /// before it; NaN for a row without tokens, as 0 / 0).
    /// </summary>
    public static void WriteTransformer(PackedLanguageModelNetwork network, OnnxExportOptions options, Stream stream, long[] keyToToken, int endOfSequence,
        string featuresName, string perplexityName)
    {
        var graph = new OnnxGraph();
        graph.AddInput("keys", OnnxGraph.Int64Type, Batch, Time);
        graph.AddInput("lengths", OnnxGraph.Int64Type, Batch);
        var ids = WithEndOfSequence(graph, KeysToTokens(graph, "keys", keyToToken), endOfSequence);
        var (features, perplexity) = LanguageModelColumns(graph, network, Quantized(options, graph), ids, "lengths");
        graph.AddNode("Identity", [features], [featuresName]);
        graph.AddNode("Identity", [perplexity], [perplexityName]);
        graph.AddOutput(featuresName, OnnxGraph.FloatType, Batch, (long)network.Recurrent.HiddenSize);
        graph.AddOutput(perplexityName, OnnxGraph.FloatType, Batch);
        graph.Write(stream, "quantized_language_model_transformer", Describe(network.Recurrent, "language model transformer", options));
    }

    /// <summary>Token ids <paramref name="tokens"/> [batch, time] with <c>&lt;eos&gt;</c> (<paramref name="endOfSequence"/>) before each row: [batch, 1 + time].</summary>
    public static string WithEndOfSequence(OnnxGraph graph, string tokens, int endOfSequence) =>
        graph.AddNode("Pad", [tokens, graph.AddInt64("eos_pads", [0, 1, 0, 0], 4), graph.AddInt64("eos", [endOfSequence])], ["ids"]);

    /// <summary>
    /// The language-model transformer's columns for rows <paramref name="ids"/> (int64 [batch, 1 + time]: <c>&lt;eos&gt;</c>,
    /// then the row's tokens and padding) with <paramref name="lengths"/> (int64 [batch]: each row's tokens): the last
    /// layer's state after the row's last token [batch, H], and the perplexity of the row's tokens [batch] (exp of the mean
    /// cross-entropy of each token given the ones before it; NaN for a row without tokens, as 0 / 0).
    /// </summary>
    public static (string Features, string Perplexity) LanguageModelColumns(OnnxGraph graph, PackedLanguageModelNetwork network, bool quantized, string ids, string lengths)
    {
        var one = graph.AddInt64("one", [1], 1);
        var steps = graph.AddNode("Add", [lengths, one], ["steps_read"]);
        var (sequence, last) = Recurrent(graph, network.Embedding, network.Recurrent, ids, steps, quantized);
        // Log-probability of token t + 1 after step t, for the row's tokens (steps 0 .. length - 1).
        var logProbabilities = graph.AddNode("LogSoftmax", [Logits(graph, network, sequence, ids, quantized)], ["log_probabilities"], OnnxAttribute.Int("axis", -1));
        var predicting = graph.AddNode("Slice", [logProbabilities, graph.AddInt64("predicting_start", [0], 1), graph.AddInt64("predicting_end", [-1], 1), one], ["predicting"]);
        var targets = graph.AddNode("Slice", [ids, one, graph.AddInt64("targets_end", [long.MaxValue], 1), one], ["targets"]);
        var picked = graph.AddNode("GatherElements", [predicting, graph.Unsqueeze(targets, 2, "targets_3d")], ["picked"], OnnxAttribute.Int("axis", 2));
        var time = graph.AddNode("Gather", [graph.AddNode("Shape", [targets], ["targets_shape"]), graph.AddInt64("time_index", [1])], ["time"], OnnxAttribute.Int("axis", 0));
        var positions = graph.AddNode("Range", [graph.AddInt64("position_zero", [0]), time, graph.AddInt64("position_step", [1])], ["positions"]);
        var read = graph.AddNode("Less", [graph.Unsqueeze(positions, 0, "positions_row"), graph.Unsqueeze(lengths, 1, "lengths_column")], ["token_read"]);
        var kept = graph.AddNode("Where", [read, graph.Squeeze(picked, 2, "picked_tokens"), graph.AddScalar("zero", 0f)], ["kept_log_probabilities"]);
        var mean = graph.AddNode("Div", [graph.ReduceSum(kept, 1, "log_likelihood"), graph.AddNode("Cast", [lengths], ["token_count"], OnnxAttribute.Int("to", OnnxGraph.FloatType))], ["mean_log_likelihood"]);
        return (last, graph.AddNode("Exp", [graph.AddNode("Neg", [mean], ["cross_entropy"])], ["perplexity"]));
    }

    /// <summary>
    /// The classifier reading <paramref name="input"/> (token ids int64 [batch, time], or frames float [batch, time, frame
    /// size]) with <paramref name="lengths"/> (int64 [batch]; empty: every row reads every step): returns the name of its
    /// class probabilities [batch, classes]. Pooling masks padding with <paramref name="mask"/> (bool [time, batch, 1]) when
    /// given, else with a mask made from the input's shape and the lengths.
    /// </summary>
    public static string Classifier(OnnxGraph graph, PackedSequenceClassifierNetwork network, bool quantized, string input, string lengths, string mask = "")
    {
        var embedding = network.InputKind == SequenceClassifierInputKind.Tokens ? network.Embedding : null;
        var (sequence, last) = Recurrent(graph, embedding, network.Recurrent, input, lengths, quantized);
        var pooled = network.Pooling == SequencePooling.Last ? last : Pool(graph, sequence, lengths, mask, network.Pooling);
        var head = OnnxWeight.From(network.Head).AddTo(graph, "head_weight", quantized);
        var bias = graph.AddFloats("head_bias", network.HeadBias.ToArray(), network.ClassCount);
        var logits = graph.AddNode("Gemm", [pooled, head, bias], ["head_logits"], OnnxAttribute.Int("transB", 1));
        return graph.AddNode("Softmax", [logits], ["class_probabilities"], OnnxAttribute.Int("axis", 1));
    }

    /// <summary>
    /// The embedding (when <paramref name="embedding"/> is given: <paramref name="input"/> holds token ids) and the recurrent
    /// stack over <paramref name="input"/> (batch-major): every step's last-layer state [time, batch, H] and each row's state
    /// after its last step [batch, H].
    /// </summary>
    public static (string Sequence, string Last) Recurrent(OnnxGraph graph, PackedMatrix? embedding, PackedRecurrentStack stack, string input, string lengths, bool quantized)
    {
        if (embedding is not null)
        {
            var table = OnnxWeight.From(embedding).AddTo(graph, "embedding", quantized);
            input = graph.AddNode("Gather", [table, input], ["embedded"], OnnxAttribute.Int("axis", 0));
        }
        var timeMajor = graph.AddNode("Transpose", [input], ["input_time_major"], OnnxAttribute.Ints("perm", 1, 0, 2));
        return OnnxRecurrentExport.Add(graph, stack, timeMajor, lengths, quantized);
    }

    /// <summary>
    /// The language model's next-token logits [batch, time, vocabulary] from its hidden states <paramref name="sequence"/>
    /// ([time, batch, H]); <paramref name="batchByTime"/> is any [batch, time] tensor (its shape gives the output's).
    /// </summary>
    public static string Logits(OnnxGraph graph, PackedLanguageModelNetwork network, string sequence, string batchByTime, bool quantized)
    {
        // Gemm on [batch * time, H] rows (ONNX Runtime fuses a QDQ weight into an approximate integer MatMul, not into Gemm).
        var hidden = graph.AddNode("Transpose", [sequence], ["hidden_batch_major"], OnnxAttribute.Ints("perm", 1, 0, 2));
        var rows = graph.AddNode("Reshape", [hidden, graph.AddInt64("hidden_rows_shape", [-1, network.Recurrent.HiddenSize], 2)], ["hidden_rows"]);
        var decoder = OnnxWeight.From(network.Decoder).AddTo(graph, "decoder_weight", quantized);
        var bias = graph.AddFloats("decoder_bias", network.DecoderBias.ToArray(), network.VocabularySize);
        var logitRows = graph.AddNode("Gemm", [rows, decoder, bias], ["logit_rows"], OnnxAttribute.Int("transB", 1));
        var logitShape = graph.AddNode("Concat",
            [graph.AddNode("Shape", [batchByTime], ["batch_time_shape"]), graph.AddInt64("vocabulary_size", [network.VocabularySize], 1)],
            ["logits_shape"], OnnxAttribute.Int("axis", 0));
        return graph.AddNode("Reshape", [logitRows, logitShape], ["next_token_logits"]);
    }

    /// <summary>
    /// ML.NET key values <paramref name="keys"/> (int64 [batch, time]; 0 is missing) mapped to token ids through
    /// <paramref name="keyToToken"/> (indexed by key): returns the ids' name.
    /// </summary>
    public static string KeysToTokens(OnnxGraph graph, string keys, long[] keyToToken) =>
        graph.AddNode("Gather", [graph.AddInt64("key_to_token", keyToToken, keyToToken.Length), keys], ["tokens"], OnnxAttribute.Int("axis", 0));

    /// <summary><paramref name="probabilities"/> [batch, classes] with the rows whose length is 0 set to <paramref name="empty"/>.</summary>
    public static string ForEmptyRows(OnnxGraph graph, string probabilities, string lengths, float[] empty)
    {
        var isEmpty = graph.AddNode("Equal", [lengths, graph.AddInt64("length_zero", [0], 1)], ["row_is_empty"]);
        return graph.AddNode("Where", [graph.Unsqueeze(isEmpty, 1, "row_is_empty_column"), graph.AddFloats("empty_row_probabilities", empty, 1, empty.Length), probabilities],
            ["row_probabilities"]);
    }

    /// <summary>The model's doc string.</summary>
    public static string Describe(PackedRecurrentStack stack, string what, OnnxExportOptions options) =>
        $"Quantized {stack.Cell} {what} ({stack.LayerCount} x {stack.HiddenSize}), {options.WeightFormat} weights.";

    /// <summary>Whether <paramref name="options"/> ask for QDQ weights; refuses them below opset 13 (no per-axis <c>DequantizeLinear</c>).</summary>
    public static bool Quantized(OnnxExportOptions options, OnnxGraph graph)
    {
        bool quantized = options.WeightFormat == OnnxWeightFormat.QuantizeDequantize;
        if (quantized && graph.Opset < OnnxGraph.AxesAsInputOpset)
            throw new InvalidOperationException($"QDQ weights need per-row DequantizeLinear, which ONNX has from opset {OnnxGraph.AxesAsInputOpset}; this graph is opset {graph.Opset}.");
        return quantized;
    }

    /// <summary>
    /// The mean or element-wise maximum of the hidden states <paramref name="sequence"/> [time, batch, H] over each row's
    /// steps <c>0 .. length - 1</c> (padding excluded, whatever the layers left there), over every step without
    /// <paramref name="lengths"/>: [batch, H].
    /// </summary>
    private static string Pool(OnnxGraph graph, string sequence, string lengths, string mask, SequencePooling pooling)
    {
        if (lengths.Length == 0)
            return graph.AddNode(pooling == SequencePooling.Max ? "ReduceMax" : "ReduceMean", [sequence], ["pooled"], OnnxAttribute.Ints("axes", 0), OnnxAttribute.Int("keepdims", 0));
        if (mask.Length == 0)
        {
            var (_, steps) = OnnxRecurrentExport.Steps(graph, sequence, "pool");
            mask = OnnxRecurrentExport.LengthMask(graph, steps, lengths, "pool");
        }
        if (pooling == SequencePooling.Max)
        {
            var masked = graph.AddNode("Where", [mask, sequence, graph.AddScalar("pool_minus_infinity", float.NegativeInfinity)], ["pool_masked"]);
            return graph.AddNode("ReduceMax", [masked], ["pooled"], OnnxAttribute.Ints("axes", 0), OnnxAttribute.Int("keepdims", 0));
        }
        var kept = graph.AddNode("Mul", [sequence, graph.AddNode("Cast", [mask], ["pool_mask_float"], OnnxAttribute.Int("to", OnnxGraph.FloatType))], ["pool_kept"]);
        var sum = graph.ReduceSum(kept, 0, "pool_sum");
        var count = graph.Unsqueeze(graph.AddNode("Cast", [lengths], ["pool_lengths_float"], OnnxAttribute.Int("to", OnnxGraph.FloatType)), 1, "pool_count");
        return graph.AddNode("Div", [sum, count], ["pooled"]);
    }
}
