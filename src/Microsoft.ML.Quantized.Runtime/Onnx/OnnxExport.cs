namespace Microsoft.ML.Quantized;

/// <summary>
/// Writes the scoring graphs of the packed networks as ONNX (opset <see cref="OnnxExportOptions.Opset"/>), with the same
/// inputs and outputs for both weight formats:
/// <list type="bullet">
/// <item>Sequence classifier: input <c>tokens</c> (int64 [batch, time], ids in [0, vocabulary)) or <c>frames</c> (float
/// [batch, time, frame size]), and <c>lengths</c> (int64 [batch], each in 1..time: the steps of each row that are read;
/// the rest is padding); output <c>probabilities</c> (float [batch, classes]: the softmax of the head at each row's last step).</item>
/// <item>Language model: input <c>tokens</c> (int64 [batch, time]); output <c>logits</c> (float [batch, time, vocabulary]:
/// the next-token logits after each step, from the zero state), or <c>log_probabilities</c> with
/// <see cref="OnnxExportOptions.LogProbabilities"/>.</item>
/// </list>
/// Embedding (Gather), recurrent stack (<see cref="OnnxRecurrentExport"/>: ONNX LSTM/GRU or Scan), head or decoder (Gemm).
/// </summary>
internal static class OnnxExport
{
    private const string Batch = "batch", Time = "time";

    /// <summary>Writes the classifier's graph to <paramref name="stream"/>.</summary>
    public static void Write(PackedSequenceClassifierNetwork network, OnnxExportOptions options, Stream stream)
    {
        var graph = new OnnxGraph();
        bool quantized = options.WeightFormat == OnnxWeightFormat.QuantizeDequantize;
        string batchMajor;
        if (network.InputKind == SequenceClassifierInputKind.Tokens)
        {
            graph.AddInput("tokens", OnnxGraph.Int64Type, Batch, Time);
            batchMajor = Embed(graph, network.Embedding!, quantized);
        }
        else
        {
            graph.AddInput("frames", OnnxGraph.FloatType, Batch, Time, (long)network.InputSize);
            batchMajor = "frames";
        }
        graph.AddInput("lengths", OnnxGraph.Int64Type, Batch);
        var timeMajor = graph.AddNode("Transpose", [batchMajor], ["input_time_major"], OnnxAttribute.Ints("perm", 1, 0, 2));
        var (_, last) = OnnxRecurrentExport.Add(graph, network.Recurrent, timeMajor, "lengths", quantized);
        var head = OnnxWeight.From(network.Head).AddTo(graph, "head_weight", quantized);
        var bias = graph.AddFloats("head_bias", network.HeadBias.ToArray(), network.ClassCount);
        var logits = graph.AddNode("Gemm", [last, head, bias], ["logits"], OnnxAttribute.Int("transB", 1));
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
        var embedded = Embed(graph, network.Embedding, quantized);
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

    /// <summary>Gather of the <c>tokens</c> input's rows of the embedding: [batch, time, embedding size].</summary>
    private static string Embed(OnnxGraph graph, PackedMatrix embedding, bool quantized)
    {
        var table = OnnxWeight.From(embedding).AddTo(graph, "embedding", quantized);
        return graph.AddNode("Gather", [table, "tokens"], ["embedded"], OnnxAttribute.Int("axis", 0));
    }
}
