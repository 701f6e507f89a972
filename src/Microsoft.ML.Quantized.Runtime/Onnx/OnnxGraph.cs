using System.Runtime.InteropServices;

namespace Microsoft.ML.Quantized;

/// <summary>
/// One ONNX graph (standard-domain operators and their weights) as data: written as an ONNX protobuf file by
/// <see cref="Write"/>, or replayed node by node into another graph (ML.NET's ONNX converter,
/// <see cref="OnnxContextExport"/>). The graph knows its opset, and the operators whose form changed at opset 13
/// (<c>Squeeze</c>/<c>Unsqueeze</c>/<c>ReduceSum</c> axes as an attribute or an input) are added through
/// <see cref="Squeeze"/>, <see cref="Unsqueeze"/> and <see cref="ReduceSum"/> in the form of that opset.
/// Field numbers are those of onnx/onnx's <c>onnx.proto</c> (IR version 8):
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
internal sealed class OnnxGraph(long opset = OnnxExportOptions.Opset)
{
    /// <summary><c>TensorProto.DataType</c> values used here.</summary>
    public const int FloatType = 1, Int8Type = 3, Int32Type = 6, Int64Type = 7, BoolType = 9, UInt32Type = 12;

    /// <summary>IR version written (8 goes with opset 17).</summary>
    public const long IrVersion = 8;

    /// <summary>The first opset whose <c>Squeeze</c>, <c>Unsqueeze</c>, <c>ReduceSum</c> take the axes as an input, and whose
    /// <c>DequantizeLinear</c> has per-axis scales.</summary>
    public const long AxesAsInputOpset = 13;

    private readonly List<OnnxNode> _nodes = [];
    private readonly List<OnnxTensor> _initializers = [];
    private readonly List<OnnxValueInfo> _inputs = [];
    private readonly List<OnnxValueInfo> _outputs = [];
    private readonly HashSet<string> _names = [];

    /// <summary>The opset of the default domain whose operator forms the graph uses.</summary>
    public long Opset { get; } = opset;

    /// <summary>The nodes in order.</summary>
    public IReadOnlyList<OnnxNode> Nodes => _nodes;

    /// <summary>The weights and constants.</summary>
    public IReadOnlyList<OnnxTensor> Initializers => _initializers;

    /// <summary>The graph inputs.</summary>
    public IReadOnlyList<OnnxValueInfo> Inputs => _inputs;

    /// <summary>The graph outputs.</summary>
    public IReadOnlyList<OnnxValueInfo> Outputs => _outputs;

    /// <summary>
    /// Declares a graph input; a dimension is a fixed size (long) or a symbolic name (string); no dimensions at all leaves
    /// the shape unstated (a subgraph input whose shape the runtime infers).
    /// </summary>
    public void AddInput(string name, int elementType, params object[] dims) => _inputs.Add(new(Claim(name), elementType, dims));

    /// <summary>Declares a graph output (a value some node produces).</summary>
    public void AddOutput(string name, int elementType, params object[] dims) => _outputs.Add(new(name, elementType, dims));

    /// <summary>A float32 weight of shape <paramref name="dims"/> (row-major values); returns its name.</summary>
    public string AddFloats(string name, float[] values, params long[] dims) => AddInitializer(name, FloatType, values, dims);

    /// <summary>An int8 weight of shape <paramref name="dims"/>; returns its name.</summary>
    public string AddInt8(string name, sbyte[] values, params long[] dims) => AddInitializer(name, Int8Type, values, dims);

    /// <summary>A float32 scalar constant; returns its name.</summary>
    public string AddScalar(string name, float value) => AddInitializer(name, FloatType, new[] { value }, []);

    /// <summary>An int64 constant of shape <paramref name="dims"/>; returns its name.</summary>
    public string AddInt64(string name, long[] values, params long[] dims) => AddInitializer(name, Int64Type, values, dims);

    /// <summary>Adds a node of the standard domain; returns its first output's name.</summary>
    public string AddNode(string opType, string[] inputs, string[] outputs, params OnnxAttribute[] attributes)
    {
        foreach (var output in outputs) if (output.Length > 0) Claim(output);
        _nodes.Add(new(opType, inputs, outputs, attributes));
        return outputs[0];
    }

    /// <summary><c>Unsqueeze</c> of <paramref name="x"/> at <paramref name="axis"/> in this opset's form; returns <paramref name="output"/>.</summary>
    public string Unsqueeze(string x, long axis, string output) => WithAxes("Unsqueeze", [x], output, [axis]);

    /// <summary><c>Squeeze</c> of <paramref name="x"/> at <paramref name="axis"/> in this opset's form; returns <paramref name="output"/>.</summary>
    public string Squeeze(string x, long axis, string output) => WithAxes("Squeeze", [x], output, [axis]);

    /// <summary><c>ReduceSum</c> of <paramref name="x"/> over <paramref name="axis"/> (the axis dropped) in this opset's form.</summary>
    public string ReduceSum(string x, long axis, string output) => WithAxes("ReduceSum", [x], output, [axis], OnnxAttribute.Int("keepdims", 0));

    private string WithAxes(string op, string[] inputs, string output, long[] axes, params OnnxAttribute[] attributes) =>
        Opset >= AxesAsInputOpset
            ? AddNode(op, [.. inputs, AddInt64($"{output}_axes", axes, axes.Length)], [output], attributes)
            : AddNode(op, inputs, [output], [OnnxAttribute.Ints("axes", axes), .. attributes]);

    /// <summary>Writes the model (opset <see cref="Opset"/> of the default domain) to <paramref name="stream"/>.</summary>
    /// <exception cref="PlatformNotSupportedException">The machine is big-endian (raw tensor data is written as in memory).</exception>
    public void Write(Stream stream, string graphName, string docString)
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
            o.Int64(2, Opset);
        });
        model.CopyTo(stream);
    }

    /// <summary>Writes the <c>GraphProto</c> fields (also a subgraph's: a Scan body).</summary>
    public void WriteGraph(ProtobufWriter g, string graphName)
    {
        int count = 0;
        foreach (var node in _nodes) g.Message(1, w => node.Write(w, $"{node.OpType}_{count++}"));
        g.String(2, graphName);
        foreach (var initializer in _initializers) g.Message(5, initializer.Write);
        foreach (var input in _inputs) g.Message(11, input.Write);
        foreach (var output in _outputs) g.Message(12, output.Write);
    }

    private string AddInitializer(string name, int dataType, Array values, long[] dims)
    {
        _initializers.Add(new(Claim(name), dataType, values, dims));
        return name;
    }

    private string Claim(string name)
    {
        if (!_names.Add(name)) throw new InvalidOperationException($"The ONNX value name '{name}' is used twice.");
        return name;
    }
}

/// <summary>One node of an <see cref="OnnxGraph"/> (standard domain); an empty input name is an omitted optional input.</summary>
internal sealed record OnnxNode(string OpType, string[] Inputs, string[] Outputs, OnnxAttribute[] Attributes)
{
    /// <summary>Writes the <c>NodeProto</c> fields.</summary>
    public void Write(ProtobufWriter w, string nodeName)
    {
        foreach (var input in Inputs) w.String(1, input);
        foreach (var output in Outputs) w.String(2, output);
        w.String(3, nodeName);
        w.String(4, OpType);
        foreach (var attribute in Attributes) w.Message(5, attribute.Write);
    }
}

/// <summary>A weight or constant: <see cref="Values"/> is a float[], sbyte[] or long[] of <see cref="DataType"/>, row-major in <see cref="Dims"/>.</summary>
internal sealed record OnnxTensor(string Name, int DataType, Array Values, long[] Dims)
{
    /// <summary>Writes the <c>TensorProto</c> fields (raw little-endian data).</summary>
    public void Write(ProtobufWriter w)
    {
        foreach (long d in Dims) w.Int64(1, d);
        w.Int64(2, DataType);
        w.String(8, Name);
        w.Bytes(9, Values switch
        {
            float[] f => MemoryMarshal.AsBytes(f.AsSpan()),
            sbyte[] b => MemoryMarshal.AsBytes(b.AsSpan()),
            long[] l => MemoryMarshal.AsBytes(l.AsSpan()),
            _ => throw new ArgumentException($"No ONNX tensor of {Values.GetType().Name}."),
        });
    }
}

/// <summary>A graph input or output: name, element type and dimensions (long sizes or string symbols; none = shape unstated).</summary>
internal sealed record OnnxValueInfo(string Name, int ElementType, object[] Dims)
{
    /// <summary>Writes the <c>ValueInfoProto</c> fields.</summary>
    public void Write(ProtobufWriter w)
    {
        w.String(1, Name);
        w.Message(2, type => type.Message(1, tensor =>
        {
            tensor.Int64(1, ElementType);
            if (Dims.Length == 0) return;
            tensor.Message(2, shape =>
            {
                foreach (var dim in Dims)
                    shape.Message(1, d =>
                    {
                        if (dim is string symbol) d.String(2, symbol);
                        else d.Int64(1, Convert.ToInt64(dim));
                    });
            });
        }));
    }
}
