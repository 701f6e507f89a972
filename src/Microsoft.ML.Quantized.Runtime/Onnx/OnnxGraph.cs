using System.Runtime.InteropServices;

namespace Microsoft.ML.Quantized;

/// <summary>
/// Builds one ONNX model (a graph of standard-domain operators with its weights) and writes it as an ONNX protobuf
/// file. Field numbers are those of onnx/onnx's <c>onnx.proto</c> (IR version 8):
/// <list type="bullet">
/// <item><c>ModelProto</c>: ir_version = 1, producer_name = 2, producer_version = 3, doc_string = 6, graph = 7, opset_import = 8
/// (<c>OperatorSetIdProto</c>: domain = 1, version = 2).</item>
/// <item><c>GraphProto</c>: node = 1, name = 2, initializer = 5, input = 11, output = 12.</item>
/// <item><c>NodeProto</c>: input = 1, output = 2, name = 3, op_type = 4, attribute = 5 (<see cref="OnnxAttribute"/>).</item>
/// <item><c>TensorProto</c>: dims = 1, data_type = 2, name = 8, raw_data = 9 (little-endian).</item>
/// <item><c>ValueInfoProto</c>: name = 1, type = 2; <c>TypeProto</c>: tensor_type = 1; <c>TypeProto.Tensor</c>: elem_type = 1,
/// shape = 2; <c>TensorShapeProto</c>: dim = 1; <c>Dimension</c>: dim_value = 1, dim_param = 2.</item>
/// </list>
/// </summary>
internal sealed class OnnxGraph
{
    /// <summary><c>TensorProto.DataType</c> values used here.</summary>
    public const int FloatType = 1, Int8Type = 3, Int32Type = 6, Int64Type = 7, BoolType = 9;

    /// <summary>IR version written (8 goes with opset 17).</summary>
    public const long IrVersion = 8;

    private readonly List<Action<ProtobufWriter>> _nodes = [];
    private readonly List<Action<ProtobufWriter>> _initializers = [];
    private readonly List<Action<ProtobufWriter>> _inputs = [];
    private readonly List<Action<ProtobufWriter>> _outputs = [];
    private readonly HashSet<string> _names = [];
    private int _nodeCount;

    /// <summary>
    /// Declares a graph input; a dimension is a fixed size (long) or a symbolic name (string); no dimensions at all leaves
    /// the shape unstated (a subgraph input whose shape the runtime infers).
    /// </summary>
    public void AddInput(string name, int elementType, params object[] dims) => _inputs.Add(w => ValueInfo(w, Claim(name), elementType, dims));

    /// <summary>Declares a graph output (a value some node produces).</summary>
    public void AddOutput(string name, int elementType, params object[] dims) => _outputs.Add(w => ValueInfo(w, name, elementType, dims));

    /// <summary>A float32 weight of shape <paramref name="dims"/> (row-major values); returns its name.</summary>
    public string AddFloats(string name, float[] values, params long[] dims) =>
        AddInitializer(name, FloatType, MemoryMarshal.AsBytes(values.AsSpan()).ToArray(), dims);

    /// <summary>An int8 weight of shape <paramref name="dims"/>; returns its name.</summary>
    public string AddInt8(string name, sbyte[] values, params long[] dims) =>
        AddInitializer(name, Int8Type, MemoryMarshal.AsBytes(values.AsSpan()).ToArray(), dims);

    /// <summary>A float32 scalar constant; returns its name.</summary>
    public string AddScalar(string name, float value) => AddInitializer(name, FloatType, BitConverter.GetBytes(value), []);

    /// <summary>An int64 constant of shape <paramref name="dims"/>; returns its name.</summary>
    public string AddInt64(string name, long[] values, params long[] dims) =>
        AddInitializer(name, Int64Type, MemoryMarshal.AsBytes(values.AsSpan()).ToArray(), dims);

    /// <summary>Adds a node of the standard domain; returns its first output's name.</summary>
    public string AddNode(string opType, string[] inputs, string[] outputs, params OnnxAttribute[] attributes)
    {
        foreach (var output in outputs) if (output.Length > 0) Claim(output);
        string nodeName = $"{opType}_{_nodeCount++}";
        _nodes.Add(w =>
        {
            foreach (var input in inputs) w.String(1, input);
            foreach (var output in outputs) w.String(2, output);
            w.String(3, nodeName);
            w.String(4, opType);
            foreach (var attribute in attributes) w.Message(5, attribute.Write);
        });
        return outputs[0];
    }

    /// <summary>Writes the model (opset <paramref name="opset"/> of the default domain) to <paramref name="stream"/>.</summary>
    /// <exception cref="PlatformNotSupportedException">The machine is big-endian (raw tensor data is written as in memory).</exception>
    public void Write(Stream stream, string graphName, long opset, string docString)
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("ONNX export writes tensors little-endian from memory; this machine is big-endian.");
        var model = new ProtobufWriter();
        model.Int64(1, IrVersion);
        model.String(2, "Microsoft.ML.Quantized");
        model.String(3, typeof(OnnxGraph).Assembly.GetName().Version?.ToString() ?? "0");
        model.String(6, docString);
        model.Message(7, g => WriteGraph(g, graphName));
        model.Message(8, o =>
        {
            o.String(1, "");
            o.Int64(2, opset);
        });
        model.CopyTo(stream);
    }

    /// <summary>Writes the <c>GraphProto</c> fields (also a subgraph's: a Scan body).</summary>
    public void WriteGraph(ProtobufWriter g, string graphName)
    {
        foreach (var node in _nodes) g.Message(1, node);
        g.String(2, graphName);
        foreach (var initializer in _initializers) g.Message(5, initializer);
        foreach (var input in _inputs) g.Message(11, input);
        foreach (var output in _outputs) g.Message(12, output);
    }

    private string AddInitializer(string name, int dataType, byte[] raw, long[] dims)
    {
        Claim(name);
        _initializers.Add(w =>
        {
            foreach (long d in dims) w.Int64(1, d);
            w.Int64(2, dataType);
            w.String(8, name);
            w.Bytes(9, raw);
        });
        return name;
    }

    private string Claim(string name)
    {
        if (!_names.Add(name)) throw new InvalidOperationException($"The ONNX value name '{name}' is used twice.");
        return name;
    }

    private static void ValueInfo(ProtobufWriter w, string name, int elementType, object[] dims)
    {
        w.String(1, name);
        w.Message(2, type => type.Message(1, tensor =>
        {
            tensor.Int64(1, elementType);
            if (dims.Length == 0) return;
            tensor.Message(2, shape =>
            {
                foreach (var dim in dims)
                    shape.Message(1, d =>
                    {
                        if (dim is string symbol) d.String(2, symbol);
                        else d.Int64(1, Convert.ToInt64(dim));
                    });
            });
        }));
    }
}
