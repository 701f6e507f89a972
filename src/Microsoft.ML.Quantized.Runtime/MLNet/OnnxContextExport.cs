using Microsoft.ML.Model.OnnxConverter;

namespace Microsoft.ML.Quantized;

/// <summary>
/// Copies an <see cref="OnnxGraph"/> into ML.NET's ONNX converter (<c>mlContext.Model.ConvertToOnnx</c>), which writes
/// the default domain at opset 9 to 12 (12 unless the caller asks for less): the graph is built in the forms of
/// <see cref="Opset"/> (axes as attributes), its inputs are bound to the converter's variables of the columns read, and
/// its outputs to the variables of the columns written. Every other name is made unique in the converter's graph. The
/// converter's nodes cannot hold a subgraph (no <c>Scan</c>) and its opsets have no per-axis <c>DequantizeLinear</c>, so
/// graphs copied here use ONNX <c>LSTM</c>/<c>GRU</c> nodes and float weights only.
/// </summary>
internal static class OnnxContextExport
{
    /// <summary>
    /// The opset whose operator forms the copied graphs use: 11 (<c>Range</c>), whose forms opset 12 keeps. The converter
    /// checks that it writes at least this (<see cref="OnnxContext.CheckOpSetVersion"/>).
    /// </summary>
    public const int Opset = 11;

    /// <summary>
    /// Checks that every layer of <paramref name="stack"/> is an ONNX LSTM/GRU cell, which is all the converter can hold;
    /// <paramref name="model"/> names the model and <paramref name="alone"/> its stand-alone export for the message.
    /// </summary>
    /// <exception cref="InvalidOperationException">A layer needs a Scan: says which, why and what to do.</exception>
    public static void CheckOperatorCells(PackedRecurrentStack stack, string model, string alone)
    {
        for (int l = 0; l < stack.LayerCount; l++)
        {
            if (OnnxRecurrentExport.WhyNotOperator(stack.Layers[l]) is { } reason)
                throw new InvalidOperationException(
                    $"mlContext.Model.ConvertToOnnx cannot convert this quantized {stack.Cell} {model}: layer {l} has {reason}, which the ONNX {stack.Cell.ToString().ToUpperInvariant()} operator cannot express. " +
                    "Such a cell exports as a Scan node with a subgraph, which ML.NET's ONNX converter cannot write (it also stops at opset 12). " +
                    $"Export the {model} alone with {alone} (opset 17, Scan) and run it with ApplyOnnxModel or ONNX Runtime on the key column after ML.NET's tokenizing and key mapping, " +
                    "or train with RecurrentNormalization None or Weight, slopes 1 and no activation quantizer to convert the whole pipeline.");
        }
    }

    /// <summary>
    /// Adds <paramref name="graph"/>'s nodes and weights to <paramref name="ctx"/>: graph input i reads converter variable
    /// <paramref name="inputs"/>[i], graph output j is written to converter variable <paramref name="outputs"/>[j].
    /// <paramref name="prefix"/> starts the names of everything else.
    /// </summary>
    public static void CopyTo(OnnxGraph graph, OnnxContext ctx, string prefix, IReadOnlyList<string> inputs, IReadOnlyList<string> outputs)
    {
        if (inputs.Count != graph.Inputs.Count || outputs.Count != graph.Outputs.Count)
            throw new ArgumentException($"The graph has {graph.Inputs.Count} inputs and {graph.Outputs.Count} outputs; {inputs.Count} and {outputs.Count} variables were given.");
        var names = new Dictionary<string, string> { [""] = "" };
        for (int i = 0; i < inputs.Count; i++) names[graph.Inputs[i].Name] = inputs[i];
        for (int i = 0; i < outputs.Count; i++) names[graph.Outputs[i].Name] = outputs[i];
        foreach (var tensor in graph.Initializers) names[tensor.Name] = AddInitializer(ctx, tensor, $"{prefix}_{tensor.Name}");
        foreach (var node in graph.Nodes)
        {
            foreach (var output in node.Outputs)
                if (!names.ContainsKey(output)) names[output] = ctx.AddIntermediateVariable(null, $"{prefix}_{output}", skip: true);
            var copy = ctx.CreateNode(node.OpType, node.Inputs.Select(i => names[i]), node.Outputs.Select(o => names[o]), ctx.GetNodeName($"{prefix}_{node.OpType}"), "");
            foreach (var attribute in node.Attributes)
            {
                switch (attribute.Kind)
                {
                    case OnnxAttributeKind.Int: copy.AddAttribute(attribute.Name, attribute.IntValues[0]); break;
                    case OnnxAttributeKind.Ints: copy.AddAttribute(attribute.Name, attribute.IntValues); break;
                    case OnnxAttributeKind.Float: copy.AddAttribute(attribute.Name, (double)attribute.FloatValue); break;
                    default: throw new InvalidOperationException($"ML.NET's ONNX converter cannot hold the {attribute.Kind} attribute '{attribute.Name}' of a {node.OpType} node.");
                }
            }
        }
    }

    private static string AddInitializer(OnnxContext ctx, OnnxTensor tensor, string name)
    {
        bool scalar = tensor.Dims.Length == 0;
        return tensor.Values switch
        {
            float[] f when scalar => ctx.AddInitializer(f[0], name),
            float[] f => ctx.AddInitializer(f, tensor.Dims, name),
            long[] l when scalar => ctx.AddInitializer(l[0], name),
            long[] l => ctx.AddInitializer(l, tensor.Dims, name),
            _ => throw new InvalidOperationException($"ML.NET's ONNX converter gets float weights only; '{tensor.Name}' is {tensor.Values.GetType().Name}."),
        };
    }
}
