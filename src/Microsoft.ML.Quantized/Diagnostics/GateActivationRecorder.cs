using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized;

/// <summary>
/// Records the distribution of every gate's pre- and post-activation while the recurrent layers run in evaluation
/// mode, without changing what they compute: it hooks <see cref="QuantizedRecurrentCell.ForwardObserver"/> and
/// recomputes the gates from each forward's input, initial state and output with the layer's own effective weights,
/// biases, normalization, slopes and activation quantizers (so the fused kernel and the cell loop are both covered).
/// Values are folded into streaming moments, never kept. Forwards in training mode are ignored (batch normalization
/// would update its running statistics twice). Dispose to unhook.
/// </summary>
internal sealed class GateActivationRecorder : IDisposable
{
    private readonly QuantizedRecurrentCell[] _layers;
    private readonly (MomentAccumulator Pre, MomentAccumulator Post)[][] _moments;
    private readonly long[][][] _histograms;

    /// <summary>Bins of each gate's post-activation histogram (<see cref="GateStatistics.PostActivationHistogram"/>): 20.</summary>
    public const int HistogramBins = 20;

    /// <summary>Hooks every layer of <paramref name="layers"/> (which must have no observer yet).</summary>
    public GateActivationRecorder(IReadOnlyList<QuantizedRecurrentCell> layers)
    {
        ArgumentNullException.ThrowIfNull(layers);
        _layers = layers.ToArray();
        _moments = new (MomentAccumulator, MomentAccumulator)[_layers.Length][];
        _histograms = new long[_layers.Length][][];
        for (int l = 0; l < _layers.Length; l++)
        {
            if (_layers[l].ForwardObserver is not null)
                throw new InvalidOperationException($"Recurrent layer {l} is already observed; dispose the other recorder first.");
            int gates = GatesOf(_layers[l]).Length;
            _moments[l] = Enumerable.Range(0, gates).Select(_ => (new MomentAccumulator(), new MomentAccumulator())).ToArray();
            _histograms[l] = Enumerable.Range(0, gates).Select(_ => new long[HistogramBins]).ToArray();
            int layer = l;
            _layers[l].ForwardObserver = (cell, input, h0, c0, output) => Observe(layer, cell, input, h0, c0, output);
        }
    }

    /// <summary>
    /// Largest |h recomputed from the recorded gates - h the layer returned| seen so far: ~1e-6 shows the recorded
    /// gates are the ones the layer computed.
    /// </summary>
    public double MaxReconstructionError { get; private set; }

    /// <summary>Forwards recorded.</summary>
    public int Forwards { get; private set; }

    /// <summary>Statistics per layer and gate, in layer then gate order.</summary>
    public IReadOnlyList<GateStatistics> Statistics()
    {
        var result = new List<GateStatistics>();
        for (int l = 0; l < _layers.Length; l++)
        {
            var names = GatesOf(_layers[l]);
            for (int g = 0; g < names.Length; g++)
            {
                var (pre, post) = _moments[l][g];
                var (low, high) = PostActivationRange(_layers[l], g);
                result.Add(new GateStatistics(l, names[g], pre.Count, pre.Mean, Math.Sqrt(pre.Variance), pre.Kurtosis, post.Kurtosis,
                    new ValueHistogram(low, high, _histograms[l][g].ToArray())));
            }
        }
        return result;
    }

    /// <summary>Unhooks the layers.</summary>
    public void Dispose()
    {
        foreach (var layer in _layers) layer.ForwardObserver = null;
    }

    /// <summary>The layer's gates, and for the LSTM its cell output tanh(c) as a fifth.</summary>
    private static string[] GatesOf(QuantizedRecurrentCell cell) => cell.HasCellState ? [.. cell.Gates, "cell"] : [.. cell.Gates];

    /// <summary>The range of gate <paramref name="gate"/>'s post-activation: [-1, 1] after a tanh (LSTM candidate and cell, GRU candidate), else [0, 1].</summary>
    private static (int Low, int High) PostActivationRange(QuantizedRecurrentCell cell, int gate) =>
        (cell.HasCellState ? gate is 2 or 4 : gate == 2) ? (-1, 1) : (0, 1);

    private void Observe(int layer, QuantizedRecurrentCell cell, Tensor input, Tensor h0, Tensor? c0, Tensor output)
    {
        if (cell.training) return;
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var (wih, whh) = cell.EffectiveWeights();
        long steps = input.shape[0];
        var previous = steps == 1 ? h0.unsqueeze(0) : cat(new[] { h0.unsqueeze(0), output.narrow(0, 0, steps - 1) }, 0);
        var x = Project(input, wih, cell.BiasIh, cell.InputLayerNorm, cell.InputBatchNorm);
        var hh = Project(previous, whh, cell.BiasHh, cell.HiddenLayerNorm, cell.HiddenBatchNorm);
        var s = cell.Slopes;
        var q = cell.ActivationQuantizers;
        Tensor rebuilt;
        if (cell.HasCellState)
        {
            var a = x.add(hh, Scalars.One).chunk(4, 2);
            var i = Act(a[0], s.InputGate, sigmoid: true);
            var f = Act(a[1], s.ForgetGate, sigmoid: true);
            var g = Act(a[2], s.Candidate, sigmoid: false);
            var o = Act(a[3], s.OutputGate, sigmoid: true);
            var (iq, fq, gq, oq) = (PerStep(q[0], i), PerStep(q[1], f), PerStep(q[2], g), PerStep(q[3], o));
            var cells = new Tensor[steps];
            var c = c0!;
            for (int t = 0; t < steps; t++)
            {
                c = (fq[t] * c).add(iq[t] * gq[t], Scalars.One);
                if (!q[5].IsIdentity) c = q[5].forward(c);
                cells[t] = c;
            }
            var cellIn = stack(cells, 0);
            if (cell is QuantizedLstmCell { CellLayerNorm: { } norm }) cellIn = norm.forward(cellIn);
            var cellOut = Act(cellIn, s.CellOutput, sigmoid: false);
            rebuilt = PerStep(q[4], oq * cellOut);
            Add(layer, 0, a[0], i);
            Add(layer, 1, a[1], f);
            Add(layer, 2, a[2], g);
            Add(layer, 3, a[3], o);
            Add(layer, 4, cellIn, cellOut);
        }
        else
        {
            var xs = x.chunk(3, 2);
            var hs = hh.chunk(3, 2);
            var aR = xs[0].add(hs[0], Scalars.One);
            var aZ = xs[1].add(hs[1], Scalars.One);
            var r = Act(aR, s.InputGate, sigmoid: true);
            var z = Act(aZ, s.ForgetGate, sigmoid: true);
            var aN = xs[2].add(PerStep(q[0], r) * hs[2], Scalars.One);
            var n = Act(aN, s.Candidate, sigmoid: false);
            var nq = PerStep(q[2], n);
            rebuilt = PerStep(q[3], nq.add(PerStep(q[1], z) * (previous - nq), Scalars.One));
            Add(layer, 0, aR, r);
            Add(layer, 1, aZ, z);
            Add(layer, 2, aN, n);
        }
        MaxReconstructionError = Math.Max(MaxReconstructionError, (rebuilt - output).abs().max().item<float>());
        Forwards++;
    }

    /// <summary>Mirrors the cell's projections: <c>norm(x W^T) + b</c> for every step ([time, batch, G*H]).</summary>
    private static Tensor Project(Tensor x, Tensor weight, Tensor bias, RecurrentLayerNorm? layerNorm, RecurrentBatchNorm? batchNorm)
    {
        if (layerNorm is not null) return layerNorm.forward(x.matmul(weight.t())).add(bias, Scalars.One);
        if (batchNorm is not null) return batchNorm.ForwardSteps(x.matmul(weight.t())).add(bias, Scalars.One);
        return nn.functional.linear(x, weight, bias);
    }

    private static Tensor Act(Tensor a, double slope, bool sigmoid)
        => sigmoid ? SlopedSigmoid.Apply(a, slope) : SlopedTanh.Apply(a, slope);

    /// <summary>
    /// <paramref name="x"/> ([time, batch, H]) through <paramref name="quantizer"/> one step at a time, as the cell quantizes
    /// it (a dynamic step, max |x| / Qp, is then each step's own).
    /// </summary>
    private static Tensor PerStep(Quantizer quantizer, Tensor x) => quantizer.IsIdentity ? x : stack(x.unbind(0).Select(quantizer.forward), 0);

    /// <summary>Adds a gate's pre- and post-activation values to its moments and its post-activation histogram.</summary>
    private void Add(int layer, int gate, Tensor pre, Tensor post)
    {
        var (preMoments, postMoments) = _moments[layer][gate];
        preMoments.Add(pre);
        postMoments.Add(post);
        var (low, high) = PostActivationRange(_layers[layer], gate);
        using var counts = post.detach().to_type(ScalarType.Float64).histc(HistogramBins, low, high).cpu();
        var histogram = _histograms[layer][gate];
        var values = counts.data<double>().ToArray();
        for (int b = 0; b < HistogramBins; b++) histogram[b] += (long)Math.Round(values[b]);
    }
}
