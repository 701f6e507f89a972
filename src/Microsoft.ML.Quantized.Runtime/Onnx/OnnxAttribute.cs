namespace Microsoft.ML.Quantized;

/// <summary>
/// One attribute of an ONNX node (<c>AttributeProto</c> in onnx.proto: name = 1, f = 2, i = 3, g = 6, ints = 8,
/// type = 20), only the kinds the exporter uses.
/// </summary>
internal sealed class OnnxAttribute
{
    // AttributeProto.AttributeType values.
    private const int FloatType = 1, IntType = 2, GraphType = 5, IntsType = 7;

    private readonly int _type;
    private readonly float _float;
    private readonly long[] _ints;
    private readonly OnnxGraph? _graph;

    private OnnxAttribute(string name, int type, float f = 0, long[]? ints = null, OnnxGraph? graph = null)
    {
        _graph = graph;
        Name = name;
        _type = type;
        _float = f;
        _ints = ints ?? [];
    }

    /// <summary>The attribute's name.</summary>
    public string Name { get; }

    /// <summary>An int attribute.</summary>
    public static OnnxAttribute Int(string name, long value) => new(name, IntType, ints: [value]);

    /// <summary>A float attribute.</summary>
    public static OnnxAttribute Float(string name, float value) => new(name, FloatType, f: value);

    /// <summary>A list-of-ints attribute.</summary>
    public static OnnxAttribute Ints(string name, params long[] values) => new(name, IntsType, ints: values);

    /// <summary>A graph attribute (a Scan body).</summary>
    public static OnnxAttribute Graph(string name, OnnxGraph body) => new(name, GraphType, graph: body);

    /// <summary>Writes the <c>AttributeProto</c> fields.</summary>
    public void Write(ProtobufWriter w)
    {
        w.String(1, Name);
        switch (_type)
        {
            case FloatType: w.Float(2, _float); break;
            case IntType: w.Int64(3, _ints[0]); break;
            case GraphType: w.Message(6, g => _graph!.WriteGraph(g, Name)); break;
            case IntsType: foreach (long v in _ints) w.Int64(8, v); break;
        }
        w.Int64(20, _type);
    }
}
