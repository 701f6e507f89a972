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
/// </summary>
internal static class OnnxExport
{
    private const string Batch = "batch", Time = "time";

    /// <summary>
    /// Writes the classifier's graph to <paramref name="stream"/>. With <paramref name="keyToToken"/> (token input), the graph
    /// reads ML.NET key values as <c>keys</c> (int64 [batch, time]; 0 is missing) and maps them to token ids through that
    /// table (indexed by key) before the embedding.
    /// </summary>
    public static void Write(PackedSequenceClassifierNetwork network, OnnxExportOptions options, Stream stream, long[]? keyToToken = null)
    {
        var graph = new OnnxGraph();
        bool quantized = options.WeightFormat == OnnxWeightFormat.QuantizeDequantize;
        string batchMajor;
        if (network.InputKind == SequenceClassifierInputKind.Tokens)
        {
            string tokens = "tokens";
            if (keyToToken is null) graph.AddInput(tokens, OnnxGraph.Int64Type, Batch, Time);
            else
            {
                graph.AddInput("keys", OnnxGraph.Int64Type, Batch, Time);
                tokens = graph.AddNode("Gather", [graph.AddInt64("key_to_token", keyToToken, keyToToken.Length), "keys"], ["tokens"], OnnxAttribute.Int("axis", 0));
            }
            batchMajor = Embed(graph, network.Embedding!, quantized, tokens);
        }
        else
        {
            graph.AddInput("frames", OnnxGraph.FloatType, Batch, Time, (long)network.InputSize);
            batchMajor = "frames";
        }
        graph.AddInput("lengths", OnnxGraph.Int64Type, Batch);
        var timeMajor = graph.AddNode("Transpose", [batchMajor], ["input_time_major"], OnnxAttribute.Ints("perm", 1, 0, 2));
        var (sequence, last) = OnnxRecurrentExport.Add(graph, network.Recurrent, timeMajor, "lengths", quantized);
        var pooled = network.Pooling == SequencePooling.Last ? last : Pool(graph, sequence, "lengths", network.Pooling);
        var head = OnnxWeight.From(network.Head).AddTo(graph, "head_weight", quantized);
        var bias = graph.AddFloats("head_bias", network.HeadBias.ToArray(), network.ClassCount);
        var logits = graph.AddNode("Gemm", [pooled, head, bias], ["logits"], OnnxAttribute.Int("transB", 1));
        graph.AddNode("Softmax", [logits], ["probabilities"], OnnxAttribute.Int("axis", 1));
        graph.AddOutput("probabilities", OnnxGraph.FloatType, Batch, (long)network.ClassCount);
        graph.Write(stream, "quantized_sequence_classifier", OnnxExportOptions.Opset,
            $"Quantized {network.Recurrent.Cell} sequence classifier ({network.Recurrent.LayerCount} x {network.Recurrent.HiddenSize}), {options.WeightFormat} weights.");
    }

    /// <summary>Writes the language model's graph to <paramref name="stream"/>.</summary>
    public static void Write(PackedLanguageModelNetwork network, OnnxExportOptions options, Stream stream)
    {
        var graph = new OnnxGraph();
        bool quantized = options.WeightFormat == OnnxWeightFormat.QuantizeDequantize;
        graph.AddInput("tokens", OnnxGraph.Int64Type, Batch, Time);
        var embedded = Embed(graph, network.Embedding, quantized, "tokens");
        var timeMajor = graph.AddNode("Transpose", [embedded], ["input_time_major"], OnnxAttribute.Ints("perm", 1, 0, 2));
        var (sequence, _) = OnnxRecurrentExport.Add(graph, network.Recurrent, timeMajor, "", quantized);
        // Gemm on [batch * time, H] rows (ONNX Runtime fuses a QDQ weight into an approximate integer MatMul, not into Gemm).
        var hidden = graph.AddNode("Transpose", [sequence], ["hidden_batch_major"], OnnxAttribute.Ints("perm", 1, 0, 2));
        var rows = graph.AddNode("Reshape", [hidden, graph.AddInt64("hidden_rows_shape", [-1, network.Recurrent.HiddenSize], 2)], ["hidden_rows"]);
        var decoder = OnnxWeight.From(network.Decoder).AddTo(graph, "decoder_weight", quantized);
        var bias = graph.AddFloats("decoder_bias", network.DecoderBias.ToArray(), network.VocabularySize);
        var logitRows = graph.AddNode("Gemm", [rows, decoder, bias], ["logit_rows"], OnnxAttribute.Int("transB", 1));
        var logitShape = graph.AddNode("Concat",
            [graph.AddNode("Shape", ["tokens"], ["tokens_shape"]), graph.AddInt64("vocabulary_size", [network.VocabularySize], 1)],
            ["logits_shape"], OnnxAttribute.Int("axis", 0));
        string output = options.LogProbabilities ? "log_probabilities" : "logits";
        var logits = graph.AddNode("Reshape", [logitRows, logitShape], ["logits"]);
        if (options.LogProbabilities) graph.AddNode("LogSoftmax", [logits], [output], OnnxAttribute.Int("axis", -1));
        graph.AddOutput(output, OnnxGraph.FloatType, Batch, Time, (long)network.VocabularySize);
        graph.Write(stream, "quantized_language_model", OnnxExportOptions.Opset,
            $"Quantized {network.Recurrent.Cell} language model ({network.Recurrent.LayerCount} x {network.Recurrent.HiddenSize}), {options.WeightFormat} weights.");
    }

    /// <summary>
    /// The mean or element-wise maximum of the hidden states <paramref name="sequence"/> [time, batch, H] over each row's
    /// steps <c>0 .. length - 1</c> (padding excluded, whatever the layers left there): [batch, H].
    /// </summary>
    private static string Pool(OnnxGraph graph, string sequence, string lengths, SequencePooling pooling)
    {
        var (_, steps) = OnnxRecurrentExport.Steps(graph, sequence, "pool");
        var mask = OnnxRecurrentExport.LengthMask(graph, steps, lengths, "pool");
        if (pooling == SequencePooling.Max)
        {
            var masked = graph.AddNode("Where", [mask, sequence, graph.AddScalar("pool_minus_infinity", float.NegativeInfinity)], ["pool_masked"]);
            return graph.AddNode("ReduceMax", [masked], ["pooled"], OnnxAttribute.Ints("axes", 0), OnnxAttribute.Int("keepdims", 0));
        }
        var kept = graph.AddNode("Mul", [sequence, graph.AddNode("Cast", [mask], ["pool_mask_float"], OnnxAttribute.Int("to", OnnxGraph.FloatType))], ["pool_kept"]);
        var sum = graph.AddNode("ReduceSum", [kept, graph.AddInt64("pool_sum_axis", [0], 1)], ["pool_sum"], OnnxAttribute.Int("keepdims", 0));
        var count = graph.AddNode("Unsqueeze",
            [graph.AddNode("Cast", [lengths], ["pool_lengths_float"], OnnxAttribute.Int("to", OnnxGraph.FloatType)), "pool_axis_1"], ["pool_count"]);
        return graph.AddNode("Div", [sum, count], ["pooled"]);
    }

    /// <summary>Gather of the <c>tokens</c> input's rows of the embedding: [batch, time, embedding size].</summary>
    private static string Embed(OnnxGraph graph, PackedMatrix embedding, bool quantized, string tokens)
    {
        var table = OnnxWeight.From(embedding).AddTo(graph, "embedding", quantized);
        return graph.AddNode("Gather", [table, tokens], ["embedded"], OnnxAttribute.Int("axis", 0));
    }
}
