namespace Microsoft.ML.Quantized;

/// <summary>
/// A <see cref="PackedRecurrentStack"/> as ONNX, one node per layer, time-major <c>[time, batch, features]</c>: an ONNX
/// <c>LSTM</c> / <c>GRU</c> (forward direction, default activations) where the cell is exactly that operator (no layer or
/// batch normalization, every slope 1, no activation quantizer), else a <c>Scan</c> running the engine's own cell
/// (<see cref="OnnxScanLayerExport"/>). For the operators, the engine's weights (weight normalization already folded into the per-row
/// scales) are regrouped from PyTorch's gate order to ONNX's: LSTM i, f, g, o -> i, o, f, c; GRU r, z, n -> z, r, h with
/// <c>linear_before_reset = 1</c> (the reset gate multiplies <c>W_hn h + b_hn</c>, as PyTorch and the engine do).
/// </summary>
internal static class OnnxRecurrentExport
{
    private static readonly int[] LstmOrder = [0, 3, 1, 2];
    private static readonly int[] GruOrder = [1, 0, 2];

    /// <summary>Whether <paramref name="layer"/> is exactly the ONNX operator: no normalization in the cell, slopes 1, no activation quantizer.</summary>
    public static bool MatchesOperator(PackedRecurrentLayer layer) => WhyNotOperator(layer) is null;

    /// <summary>What in <paramref name="layer"/> the ONNX LSTM/GRU operator cannot express (for messages), or null when it is that operator.</summary>
    public static string? WhyNotOperator(PackedRecurrentLayer layer)
    {
        var norm = layer.Input.Normalization ?? layer.Hidden.Normalization ?? (layer as PackedLstmLayer)?.CellNormalization;
        if (norm is not null) return norm is PackedLayerNorm ? "layer normalization" : "batch normalization";
        if (layer.Slopes.ToArray().Any(s => s != 1f)) return $"gate slopes {string.Join(", ", layer.Slopes.ToArray())} (the operator's are 1)";
        if (!layer.Activations.All(a => a.IsIdentity)) return "activation quantizers";
        return null;
    }

    /// <summary>
    /// Adds the stack reading <paramref name="input"/> ([time, batch, InputSize] float) and returns the names of the last
    /// layer's outputs: every step's hidden state [time, batch, H] and the hidden state at each sequence's last step
    /// [batch, H]. <paramref name="lengths"/> names an int64 [batch] tensor of sequence lengths, or is empty for full length.
    /// A layer that <see cref="MatchesOperator"/> becomes an ONNX LSTM/GRU node; any other a Scan
    /// (<see cref="OnnxScanLayerExport"/>).
    /// </summary>
    public static (string Sequence, string Last) Add(OnnxGraph graph, PackedRecurrentStack stack, string input, string lengths, bool quantized)
    {
        bool lstm = stack.Cell == RecurrentCellKind.Lstm;
        int h = stack.HiddenSize;
        var order = lstm ? LstmOrder : GruOrder;
        string lengths32 = "", steps = "", zeros = "", mask = "";
        string x = input, last = "";
        for (int l = 0; l < stack.LayerCount; l++)
        {
            var layer = stack.Layers[l];
            string p = $"layer{l}";
            if (!MatchesOperator(layer))
            {
                if (graph.Opset < OnnxExportOptions.Opset)
                    throw new InvalidOperationException($"Layer {l} needs a Scan over the engine's cell, written at opset {OnnxExportOptions.Opset}; this graph is opset {graph.Opset}.");
                if (steps.Length == 0) (steps, zeros, mask) = ScanInputs(graph, input, h, lengths);
                (x, last) = OnnxScanLayerExport.Add(graph, layer, p, x, steps, zeros, mask, quantized);
                continue;
            }
            if (lengths.Length > 0 && lengths32.Length == 0)
                lengths32 = graph.AddNode("Cast", [lengths], ["lengths_int32"], OnnxAttribute.Int("to", OnnxGraph.Int32Type));
            var w = OnnxWeight.From(layer.Input.Weight).ReorderBlocks(order, h).AddTo(graph, $"{p}_W", quantized);
            var r = OnnxWeight.From(layer.Hidden.Weight).ReorderBlocks(order, h).AddTo(graph, $"{p}_R", quantized);
            var bias = new float[2 * order.Length * h];
            for (int b = 0; b < order.Length; b++)
            {
                layer.Input.Bias.Slice(order[b] * h, h).CopyTo(bias.AsSpan(b * h, h));
                layer.Hidden.Bias.Slice(order[b] * h, h).CopyTo(bias.AsSpan((order.Length + b) * h, h));
            }
            var attributes = new List<OnnxAttribute> { OnnxAttribute.Int("hidden_size", h) };
            if (!lstm) attributes.Add(OnnxAttribute.Int("linear_before_reset", 1));
            string y = $"{p}_Y", yh = $"{p}_Y_h";
            graph.AddNode(lstm ? "LSTM" : "GRU",
                [x, graph.Unsqueeze(w, 0, $"{w}_3d"), graph.Unsqueeze(r, 0, $"{r}_3d"), graph.AddFloats($"{p}_B", bias, 1, bias.Length), lengths32],
                [y, yh], [.. attributes]);
            // Y is [time, directions = 1, batch, H]; Y_h is [directions = 1, batch, H].
            x = graph.Squeeze(y, 1, $"{p}_output");
            last = graph.Squeeze(yh, 0, $"{p}_last");
        }
        return (x, last);
    }

    /// <summary>What the Scan layers share: the step indices [time], a zero state [batch, H] and the length mask [time, batch, 1] (empty without lengths).</summary>
    private static (string Steps, string Zeros, string Mask) ScanInputs(OnnxGraph graph, string input, int h, string lengths)
    {
        var (shape, steps) = Steps(graph, input, "scan");
        var batch = graph.AddNode("Gather", [shape, graph.AddInt64("scan_index_1", [1], 1)], ["scan_batch"], OnnxAttribute.Int("axis", 0));
        var stateShape = graph.AddNode("Concat", [batch, graph.AddInt64("scan_hidden", [h], 1)], ["scan_state_shape"], OnnxAttribute.Int("axis", 0));
        var zeros = graph.AddNode("ConstantOfShape", [stateShape], ["scan_zero_state"]);
        return (steps, zeros, lengths.Length == 0 ? "" : LengthMask(graph, steps, lengths, "scan"));
    }

    /// <summary>The shape of <paramref name="timeMajor"/> ([time, batch, ...]) and its step indices 0..time-1 (int64 [time]).</summary>
    public static (string Shape, string Steps) Steps(OnnxGraph graph, string timeMajor, string prefix)
    {
        var shape = graph.AddNode("Shape", [timeMajor], [$"{prefix}_input_shape"]);
        var time = graph.AddNode("Gather", [shape, graph.AddInt64($"{prefix}_index_0", [0])], [$"{prefix}_time"], OnnxAttribute.Int("axis", 0));
        var steps = graph.AddNode("Range", [graph.AddInt64($"{prefix}_zero", [0]), time, graph.AddInt64($"{prefix}_one", [1])], [$"{prefix}_steps"]);
        return (shape, steps);
    }

    /// <summary>Which steps each row reads: <c>step &lt; lengths[row]</c>, bool [time, batch, 1].</summary>
    public static string LengthMask(OnnxGraph graph, string steps, string lengths, string prefix)
    {
        var within = graph.AddNode("Less",
            [graph.Unsqueeze(steps, 1, $"{prefix}_steps_column"), graph.Unsqueeze(lengths, 0, $"{prefix}_lengths_row")], [$"{prefix}_within"]);
        return graph.Unsqueeze(within, 2, $"{prefix}_mask");
    }
}
