namespace Microsoft.ML.Quantized;

/// <summary>
/// One attribute of an ONNX node (<c>AttributeProto</c> in onnx.proto: name = 1, f = 2, i = 3, g = 6, ints = 8,
/// type = 20), only the kinds the exporter uses.
/// </summary>
internal sealed class OnnxAttribute
{
    private OnnxAttribute(string name, OnnxAttributeKind kind, float f = 0, long[]? ints = null, OnnxGraph? graph = null)
    {
        Name = name;
        Kind = kind;
        FloatValue = f;
        IntValues = ints ?? [];
        Graph = graph;
    }

    /// <summary>The attribute's name.</summary>
    public string Name { get; }

    /// <summary>Which value it holds.</summary>
    public OnnxAttributeKind Kind { get; }

    /// <summary>The value of a <see cref="OnnxAttributeKind.Float"/> attribute.</summary>
    public float FloatValue { get; }

    /// <summary>The value of an <see cref="OnnxAttributeKind.Ints"/> attribute; that of an <see cref="OnnxAttributeKind.Int"/> one is its only element.</summary>
    public long[] IntValues { get; }

    /// <summary>The subgraph of a <see cref="OnnxAttributeKind.Graph"/> attribute (a Scan body).</summary>
    public OnnxGraph? Graph { get; }

    /// <summary>An int attribute.</summary>
    public static OnnxAttribute Int(string name, long value) => new(name, OnnxAttributeKind.Int, ints: [value]);

    /// <summary>A float attribute.</summary>
    public static OnnxAttribute Float(string name, float value) => new(name, OnnxAttributeKind.Float, f: value);

    /// <summary>A list-of-ints attribute.</summary>
    public static OnnxAttribute Ints(string name, params long[] values) => new(name, OnnxAttributeKind.Ints, ints: values);

    /// <summary>A graph attribute (a Scan body).</summary>
    public static OnnxAttribute Subgraph(string name, OnnxGraph body) => new(name, OnnxAttributeKind.Graph, graph: body);

    /// <summary>Writes the <c>AttributeProto</c> fields.</summary>
    public void Write(ProtobufWriter w)
    {
        w.String(1, Name);
        switch (Kind)
        {
            case OnnxAttributeKind.Float: w.Float(2, FloatValue); break;
            case OnnxAttributeKind.Int: w.Int64(3, IntValues[0]); break;
            case OnnxAttributeKind.Graph: w.Message(6, g => Graph!.WriteGraph(g, Name)); break;
            case OnnxAttributeKind.Ints: foreach (long v in IntValues) w.Int64(8, v); break;
        }
        w.Int64(20, (int)Kind);
    }
}

/// <summary>The <c>AttributeProto.AttributeType</c> values the exporter writes.</summary>
internal enum OnnxAttributeKind
{
    /// <summary>FLOAT.</summary>
    Float = 1,

    /// <summary>INT.</summary>
    Int = 2,

    /// <summary>GRAPH.</summary>
    Graph = 5,

    /// <summary>INTS.</summary>
    Ints = 7,
}
