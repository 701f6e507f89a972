namespace Microsoft.ML.Quantized;

/// <summary>
/// One recurrent layer the ONNX <c>LSTM</c>/<c>GRU</c> operators cannot express (layer or batch normalization, slopes,
/// activation quantizers) as the engine's own cell (<see cref="PackedLstmLayer"/>, <see cref="PackedGruLayer"/>) in a
/// <c>Scan</c> over time. The body computes <c>norm(W_ih x) + b_ih</c> and <c>norm(W_hh h) + b_hh</c> (each a <c>Gemm</c>,
/// which ONNX Runtime does not fuse with a QDQ weight into an approximate integer kernel), the gates and the new state. Batch normalization's per-step statistics (step t uses
/// set min(t, sets - 1)) enter the body as scan inputs. With sequence lengths, a row keeps its state after its last step.
/// </summary>
internal static class OnnxScanLayerExport
{
    /// <summary>
    /// Adds layer <paramref name="layer"/> reading <paramref name="x"/> ([time, batch, inputs]) and returns its hidden states
    /// [time, batch, H] and the state after each row's last step [batch, H].
    /// </summary>
    /// <param name="graph">The outer graph.</param>
    /// <param name="layer">The layer.</param>
    /// <param name="p">A prefix unique to the layer.</param>
    /// <param name="x">Time-major input.</param>
    /// <param name="steps">int64 [time]: 0, 1, ..., time - 1.</param>
    /// <param name="zeros">A float [batch, H] zero state.</param>
    /// <param name="mask">bool [time, batch, 1]: step t is within row b's length; empty when every row is read to the end.</param>
    /// <param name="quantized">QDQ weights.</param>
    public static (string Sequence, string Last) Add(OnnxGraph graph, PackedRecurrentLayer layer, string p, string x, string steps, string zeros, string mask, bool quantized)
    {
        bool lstm = layer.Cell == RecurrentCellKind.Lstm;
        int h = layer.HiddenSize, gates = layer.Input.Outputs / h;
        var inputWeight = OnnxWeight.From(layer.Input.Weight).AddTo(graph, $"{p}_W_ih", quantized);
        var hiddenWeight = OnnxWeight.From(layer.Hidden.Weight).AddTo(graph, $"{p}_W_hh", quantized);
        var inputBias = graph.AddFloats($"{p}_b_ih", layer.Input.Bias.ToArray(), gates * h);
        var hiddenBias = graph.AddFloats($"{p}_b_hh", layer.Hidden.Bias.ToArray(), gates * h);

        var body = new OnnxGraph();
        var scanInputs = new List<string>();
        string hPrev = $"{p}_h_in", cPrev = $"{p}_c_in", xStep = $"{p}_x_t";
        body.AddInput(hPrev, OnnxGraph.FloatType);
        if (lstm) body.AddInput(cPrev, OnnxGraph.FloatType);
        body.AddInput(xStep, OnnxGraph.FloatType);
        scanInputs.Add(x);
        if (mask.Length > 0)
        {
            body.AddInput($"{p}_mask_t", OnnxGraph.BoolType);
            scanInputs.Add(mask);
        }
        var inputNorm = StepNorm(graph, body, layer.Input.Normalization, steps, $"{p}_x_norm", scanInputs);
        var hiddenNorm = StepNorm(graph, body, layer.Hidden.Normalization, steps, $"{p}_h_norm", scanInputs);
        var cellNorm = lstm ? StepNorm(graph, body, ((PackedLstmLayer)layer).CellNormalization, steps, $"{p}_c_norm", scanInputs) : null;

        var b = new Body(body, p, layer);
        string xg = b.Product(xStep, inputWeight, inputNorm, inputBias, "x");
        string hg = b.Product(hPrev, hiddenWeight, hiddenNorm, hiddenBias, "h");
        var split = graph.AddInt64($"{p}_split", Enumerable.Repeat((long)h, gates).ToArray(), gates);
        string hNew, cNew = "";
        if (lstm)
        {
            string a = b.Node("Add", [xg, hg], "gates");
            var parts = b.Split(a, split, gates);
            string i = b.Gate("Sigmoid", parts[0], 0, 0), f = b.Gate("Sigmoid", parts[1], 1, 1);
            string g = b.Gate("Tanh", parts[2], 2, 2), o = b.Gate("Sigmoid", parts[3], 3, 3);
            cNew = b.Quantize(b.Node("Add", [b.Node("Mul", [f, cPrev], "fc"), b.Node("Mul", [i, g], "ig")], "c_new"), 5);
            string cellOut = cellNorm?.Invoke(cNew) ?? cNew;
            cellOut = b.Node("Tanh", [b.Sloped(cellOut, 4)], "c_tanh");
            hNew = b.Quantize(b.Node("Mul", [o, cellOut], "h_raw"), 4);
        }
        else
        {
            var xs = b.Split(xg, split, gates);
            var hs = b.Split(hg, split, gates);
            string r = b.Gate("Sigmoid", b.Node("Add", [xs[0], hs[0]], "r_pre"), 0, 0);
            string z = b.Gate("Sigmoid", b.Node("Add", [xs[1], hs[1]], "z_pre"), 1, 1);
            string n = b.Gate("Tanh", b.Node("Add", [xs[2], b.Node("Mul", [r, hs[2]], "r_hn")], "n_pre"), 2, 2);
            hNew = b.Quantize(b.Node("Add", [n, b.Node("Mul", [z, b.Node("Sub", [hPrev, n], "h_minus_n")], "z_diff")], "h_raw"), 3);
        }
        if (mask.Length > 0)
        {
            hNew = b.Node("Where", [$"{p}_mask_t", hNew, hPrev], "h_kept");
            if (lstm) cNew = b.Node("Where", [$"{p}_mask_t", cNew, cPrev], "c_kept");
        }
        string hOut = b.Node("Identity", [hNew], "h_out"), yOut = b.Node("Identity", [hNew], "y_out");
        body.AddOutput(hOut, OnnxGraph.FloatType);
        if (lstm) body.AddOutput(b.Node("Identity", [cNew], "c_out"), OnnxGraph.FloatType);
        body.AddOutput(yOut, OnnxGraph.FloatType);

        string last = $"{p}_h_last", sequence = $"{p}_output";
        var states = lstm ? new[] { zeros, zeros } : [zeros];
        var outputs = lstm ? new[] { last, $"{p}_c_last", sequence } : [last, sequence];
        graph.AddNode("Scan", [.. states, .. scanInputs], outputs,
            OnnxAttribute.Subgraph("body", body), OnnxAttribute.Int("num_scan_inputs", scanInputs.Count));
        return (sequence, last);
    }

    /// <summary>
    /// A normalization inside the body: returns what applies it to a body value, adding batch statistics per step as scan
    /// inputs; null for none.
    /// </summary>
    private static Func<string, string>? StepNorm(OnnxGraph graph, OnnxGraph body, PackedNormalization? normalization, string steps, string p, List<string> scanInputs)
    {
        switch (normalization)
        {
            case null:
                return null;
            case PackedLayerNorm layerNorm:
                return v => LayerNorm(graph, body, layerNorm, v, p);
            case PackedBatchNorm batch:
                var (scale, shift) = BatchStatistics(graph, batch, steps, p);
                body.AddInput($"{p}_scale_t", OnnxGraph.FloatType);
                body.AddInput($"{p}_shift_t", OnnxGraph.FloatType);
                scanInputs.Add(scale);
                scanInputs.Add(shift);
                return v => body.AddNode("Add", [body.AddNode("Mul", [v, $"{p}_scale_t"], [$"{p}_scaled"]), $"{p}_shift_t"], [$"{p}_out"]);
            default:
                throw new ArgumentException($"Unknown normalization {normalization.GetType().Name}.", nameof(normalization));
        }
    }

    /// <summary>
    /// ONNX LayerNormalization (opset 17) over the last axis: (x - mean) / sqrt(var + eps) * gain + bias. Per gate (G groups),
    /// it normalizes the [batch, G, H] view with unit scale, then applies the gain and bias [G*H] to the flat [batch, G*H].
    /// </summary>
    private static string LayerNorm(OnnxGraph weights, OnnxGraph nodes, PackedLayerNorm norm, string x, string p)
    {
        var gain = weights.AddFloats($"{p}_gain", norm.Gain.ToArray(), norm.Features);
        var bias = weights.AddFloats($"{p}_bias", norm.Bias.ToArray(), norm.Features);
        var axis = OnnxAttribute.Int("axis", -1);
        var epsilon = OnnxAttribute.Float("epsilon", norm.Epsilon);
        if (norm.Groups == 1) return nodes.AddNode("LayerNormalization", [x, gain, bias], [$"{p}_out"], axis, epsilon);
        int size = norm.Features / norm.Groups;
        var grouped = nodes.AddNode("Reshape", [x, weights.AddInt64($"{p}_grouped_shape", [0, norm.Groups, size], 3)], [$"{p}_grouped"]);
        var normalized = nodes.AddNode("LayerNormalization",
            [grouped, weights.AddFloats($"{p}_unit_gain", Enumerable.Repeat(1f, size).ToArray(), size)], [$"{p}_normalized"], axis, epsilon);
        var flat = nodes.AddNode("Reshape", [normalized, weights.AddInt64($"{p}_flat_shape", [0, norm.Features], 2)], [$"{p}_flat"]);
        return nodes.AddNode("Add", [nodes.AddNode("Mul", [flat, gain], [$"{p}_scaled"]), bias], [$"{p}_out"]);
    }

    /// <summary>The folded scale and shift of each step, [time, 1, features]: set min(t, sets - 1).</summary>
    private static (string Scale, string Shift) BatchStatistics(OnnxGraph graph, PackedBatchNorm batch, string steps, string p)
    {
        var sets = graph.AddNode("Min", [steps, graph.AddInt64($"{p}_last_set", [batch.Sets - 1], 1)], [$"{p}_sets"]);
        var scale = graph.AddFloats($"{p}_scale", batch.Scale.ToArray(), batch.Sets, 1, batch.Features);
        var shift = graph.AddFloats($"{p}_shift", batch.Shift.ToArray(), batch.Sets, 1, batch.Features);
        return (graph.AddNode("Gather", [scale, sets], [$"{p}_scale_steps"], OnnxAttribute.Int("axis", 0)),
            graph.AddNode("Gather", [shift, sets], [$"{p}_shift_steps"], OnnxAttribute.Int("axis", 0)));
    }

    /// <summary>Node helpers for one body, named after the layer's prefix.</summary>
    private sealed class Body(OnnxGraph graph, string p, PackedRecurrentLayer layer)
    {
        private int _count;

        public string Node(string op, string[] inputs, string name, params OnnxAttribute[] attributes) =>
            graph.AddNode(op, inputs, [$"{p}_{name}_{_count++}"], attributes);

        /// <summary>norm(W v) + b of one step: Gemm with the [rows, columns] weight transposed, the normalization, the bias.</summary>
        public string Product(string v, string weight, Func<string, string>? norm, string bias, string name)
        {
            string product = Node("Gemm", [v, weight], $"{name}_product", OnnxAttribute.Int("transB", 1));
            return Node("Add", [norm?.Invoke(product) ?? product, bias], $"{name}_gates");
        }

        public string[] Split(string x, string sizes, int parts)
        {
            var outputs = Enumerable.Range(0, parts).Select(k => $"{p}_split{_count}_{k}").ToArray();
            _count++;
            graph.AddNode("Split", [x, sizes], outputs, OnnxAttribute.Int("axis", -1));
            return outputs;
        }

        /// <summary>x / slope s (the engine skips the division at slope 1).</summary>
        public string Sloped(string x, int slope) => layer.Slopes[slope] == 1f ? x
            : Node("Div", [x, graph.AddScalar($"{p}_slope{slope}_{_count}", layer.Slopes[slope])], "sloped");

        /// <summary>Activation quantizer a of sigmoid or tanh (x / slope s).</summary>
        public string Gate(string op, string x, int slope, int activation) => Quantize(Node(op, [Sloped(x, slope)], op.ToLowerInvariant()), activation);

        /// <summary>Activation quantizer <paramref name="activation"/> in its evaluation form (<see cref="PackedActivationQuantizer.Apply"/>).</summary>
        public string Quantize(string x, int activation)
        {
            var q = layer.Activations[activation];
            switch (q.Method)
            {
                case ActivationQuantization.None:
                    return x;
                case ActivationQuantization.BernoulliTernary:
                    var kept = Node("Cast", [Node("Greater", [Node("Abs", [x], "abs"), Scalar(0.5f)], "above")], "kept", OnnxAttribute.Int("to", OnnxGraph.FloatType));
                    return Node("Mul", [Node("Sign", [x], "sign"), kept], "ternary");
                default:
                    string step = q.FixedStep > 0 ? Scalar(q.FixedStep) : ComputedStep(x, q);
                    var levels = Node("Clip", [Node("Div", [x, step], "levels"), Scalar(-q.MaxLevel), Scalar(q.MaxLevel)], "clipped");
                    return Node("Mul", [Node("Round", [levels], "rounded"), step], "uniform");
            }
        }

        /// <summary>max |x| / Qp per row (1 when not positive), times the multiplier, rounded up to a power of two if asked.</summary>
        private string ComputedStep(string x, PackedActivationQuantizer q)
        {
            var max = Node("ReduceMax", [Node("Abs", [x], "abs")], "max", OnnxAttribute.Ints("axes", -1), OnnxAttribute.Int("keepdims", 1));
            var step = Node("Div", [max, Scalar(q.MaxLevel)], "step");
            step = Node("Where", [Node("Greater", [step, Scalar(0f)], "positive"), step, Scalar(1f)], "step_or_one");
            if (q.Multiplier != 1f) step = Node("Mul", [step, Scalar(q.Multiplier)], "step_scaled");
            if (!q.PowerOfTwoStep) return step;
            // 2^ceil(log2 s) from ln s / ln 2, which can land one power off at exact powers of two: halve or double to the
            // smallest power of two >= s, as PackedActivationQuantizer.PowerOfTwoAtLeast gives.
            var power = Node("Pow", [Scalar(2f), Node("Ceil", [Node("Div", [Node("Log", [step], "ln"), Scalar(MathF.Log(2f))], "log2")], "ceil")], "power");
            var half = Node("Mul", [power, Scalar(0.5f)], "half");
            power = Node("Where", [Node("GreaterOrEqual", [half, step], "half_enough"), half, power], "power_down");
            return Node("Where", [Node("Less", [power, step], "short"), Node("Mul", [power, Scalar(2f)], "doubled"), power], "step_pow2");
        }

        private string Scalar(float value) => graph.AddScalar($"{p}_const{_count++}", value);
    }
}
