namespace Microsoft.ML.Quantized;

/// <summary>
/// A <see cref="PackedRecurrentStack"/> as ONNX <c>LSTM</c> / <c>GRU</c> nodes, one per layer (forward direction, default
/// activations, time-major <c>[time, batch, features]</c>). Exports only cells that those operators compute exactly: no
/// layer or batch normalization, every slope 1, no activation quantizer; anything else throws
/// <see cref="OnnxExportException"/>. The engine's weights (weight normalization already folded into the per-row
/// scales) are regrouped from PyTorch's gate order to ONNX's: LSTM i, f, g, o -> i, o, f, c; GRU r, z, n -> z, r, h with
/// <c>linear_before_reset = 1</c> (the reset gate multiplies <c>W_hn h + b_hn</c>, as PyTorch and the engine do).
/// </summary>
internal static class OnnxRecurrentExport
{
    private static readonly int[] LstmOrder = [0, 3, 1, 2];
    private static readonly int[] GruOrder = [1, 0, 2];

    /// <summary>Throws <see cref="OnnxExportException"/> when a layer does not match the ONNX operator exactly.</summary>
    public static void CheckExportable(PackedRecurrentStack stack)
    {
        for (int l = 0; l < stack.LayerCount; l++)
        {
            var layer = stack.Layers[l];
            string where = $"Layer {l} ({layer.Cell})";
            var normalization = layer.Input.Normalization ?? layer.Hidden.Normalization
                ?? (layer as PackedLstmLayer)?.CellNormalization;
            if (normalization is not null)
                throw new OnnxExportException(
                    $"{where} applies {(normalization is PackedLayerNorm ? "layer" : "batch")} normalization inside the cell, which the ONNX {layer.Cell.ToString().ToUpperInvariant()} operator cannot express; " +
                    "export needs QuantizedRecurrentOptions.Normalization = None or Weight (weight normalization is folded into the weights).");
            for (int s = 0; s < layer.Slopes.Length; s++)
                if (layer.Slopes[s] != 1f)
                    throw new OnnxExportException(
                        $"{where} has activation slope {s} = {layer.Slopes[s]}; the ONNX operator's sigmoid and tanh have slope 1. " +
                        "Export needs every QuantizedRecurrentOptions.Slopes value at 1 (the default).");
            for (int a = 0; a < layer.Activations.Count; a++)
                if (!layer.Activations[a].IsIdentity)
                    throw new OnnxExportException(
                        $"{where} quantizes activation {a} ({layer.Activations[a].Method}), which the ONNX operator cannot express; " +
                        "export needs QuantizedRecurrentOptions.ActivationQuantizer.Kind = None.");
        }
    }

    /// <summary>
    /// Adds the stack reading <paramref name="input"/> ([time, batch, InputSize] float) and returns the names of the last
    /// layer's outputs: every step's hidden state [time, batch, H] and the hidden state at each sequence's last step
    /// [batch, H]. <paramref name="lengths"/> names an int32 [batch] tensor of sequence lengths, or is empty for full length.
    /// </summary>
    public static (string Sequence, string Last) Add(OnnxGraph graph, PackedRecurrentStack stack, string input, string lengths, bool quantized)
    {
        CheckExportable(stack);
        bool lstm = stack.Cell == RecurrentCellKind.Lstm;
        int h = stack.HiddenSize;
        var order = lstm ? LstmOrder : GruOrder;
        var axis0 = graph.AddInt64("axes_0", [0], 1);
        var axis1 = graph.AddInt64("axes_1", [1], 1);
        string x = input, last = "";
        for (int l = 0; l < stack.LayerCount; l++)
        {
            var layer = stack.Layers[l];
            string p = $"layer{l}";
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
                [x, Unsqueezed(graph, w, axis0), Unsqueezed(graph, r, axis0), graph.AddFloats($"{p}_B", bias, 1, bias.Length), lengths],
                [y, yh], [.. attributes]);
            // Y is [time, directions = 1, batch, H]; Y_h is [directions = 1, batch, H].
            x = graph.AddNode("Squeeze", [y, axis1], [$"{p}_output"]);
            last = yh;
        }
        return (x, graph.AddNode("Squeeze", [last, axis0], ["last_hidden"]));
    }

    private static string Unsqueezed(OnnxGraph graph, string matrix, string axis0) =>
        graph.AddNode("Unsqueeze", [matrix, axis0], [$"{matrix}_3d"]);
}
