using System.Globalization;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized;

/// <summary>
/// Builds a <see cref="RobustnessReport"/>: scores a trained model at float and after post-training uniform quantization
/// at each of <see cref="BitWidths"/>, under step sizes scaled by <see cref="StepSizeMultipliers"/> and rounded to a power of
/// two at <see cref="PerturbationBits"/> (KURE's robustness experiments, Shkolnik et al. 2020), and collects weight and gate
/// kurtosis. Nothing is retrained; each configuration is a re-quantized copy, disposed after scoring. As in the paper, the
/// step is by default the least-error step (<see cref="MinimumErrorStep"/>), and the first and last layers (embedding and
/// decoder or head) stay float where the model has them float (the default): a re-quantized copy changes the weight
/// quantizer of the recurrent weights, and of the embedding and decoder or head only where the model quantized them with
/// it (<see cref="LanguageModelOptions.QuantizeEmbeddingAndDecoder"/>, a classifier's quantized head).
/// </summary>
public sealed class RobustnessReportBuilder
{
    /// <summary>Uniform bit widths to quantize to after training, each 2-8. Default 2, 3, 4, 5, 6, 8.</summary>
    public IList<int> BitWidths { get; set; } = new List<int> { 2, 3, 4, 5, 6, 8 };

    /// <summary>Bit width of the step-size rows, 2-8. Default 4.</summary>
    public int PerturbationBits { get; set; } = 4;

    /// <summary>
    /// Step-size multipliers (see <see cref="QuantizerOptions.StepSizeMultiplier"/>), each finite and &gt; 0. Default
    /// 0.95, 0.98, 1.02, 1.05 (the paper's +-2% and +-5%).
    /// </summary>
    public IList<double> StepSizeMultipliers { get; set; } = new List<double> { 0.95, 0.98, 1.02, 1.05 };

    /// <summary>
    /// Add a row with the step rounded up to a power of two. Default true. With no <see cref="StepSizeMultipliers"/> either,
    /// the report has no step-size rows at all (not even the exact step).
    /// </summary>
    public bool IncludePowerOfTwoStep { get; set; } = true;

    /// <summary>Quantize with one step per output row instead of one per tensor. Default false (per tensor).</summary>
    public bool PerRowScale { get; set; }

    /// <summary>
    /// Quantize with the minimum-squared-error step (<see cref="QuantizerOptions.MinimumErrorStep"/>, which clips outliers)
    /// instead of <c>max |w| / Qp</c>; the multipliers and the power-of-two row then start from that step. Default true:
    /// the robustness experiments of KURE (Shkolnik et al. 2020) perturb an optimized step, the one that minimizes the
    /// quantization error, not the step that keeps every weight in range. False gives the max step (every weight in range).
    /// </summary>
    public bool MinimumErrorStep { get; set; } = true;

    /// <summary>
    /// Activation bit widths, each 2-8: the model is also scored with its gates and hidden state (the activations its
    /// <see cref="QuantizedRecurrentOptions.QuantizedActivations"/> names; those two by default) quantized after training
    /// to each (uniform symmetric, a dynamic step of max |x| / (2^(k-1) - 1) per tensor, the form the packed engine runs),
    /// first with its weights as trained, then with its weights at <see cref="PerturbationBits"/> (the report's
    /// <see cref="RobustnessReport.Activations"/>). Only for models trained with float activations. Default empty (no
    /// activation rows: each row scores the model once more, through the slower cell loop).
    /// </summary>
    public IList<int> ActivationBitWidths { get; set; } = new List<int>();

    /// <summary>
    /// The activations the <see cref="ActivationBitWidths"/> rows quantize, e.g. <see cref="RecurrentActivations.CellState"/>
    /// alone (LSTM only) to see what quantizing the cell state costs. Default null: the model's own
    /// <see cref="QuantizedRecurrentOptions.QuantizedActivations"/> (the gates and hidden state unless set otherwise).
    /// </summary>
    public RecurrentActivations? QuantizedActivations { get; set; }

    /// <summary>
    /// Bit widths, each 2-8, at which the weight tensors are also quantized one at a time, the rest kept float (a layer-wise
    /// sensitivity analysis; KURE's per-layer error): for each tensor the k-bit model would quantize, the model is scored with
    /// that tensor alone at k bits, then with each gate's block of rows alone (a recurrent tensor's input, forget, candidate and
    /// output rows, or reset, update and candidate), each block holding exactly the values it has in the k-bit model (same
    /// step). The report's <see cref="RobustnessReport.PerTensor"/>. Default empty (each row scores the model once more).
    /// </summary>
    public IList<int> PerTensorBitWidths { get; set; } = new List<int>();

    /// <summary>Record gate pre- and post-activation statistics while scoring the model as trained. Default true.</summary>
    public bool RecordGates { get; set; } = true;

    /// <summary>The report of a language model, scored by perplexity on <paramref name="evaluationText"/>.</summary>
    public RobustnessReport Build(QuantizedLanguageModel model, string evaluationText)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(evaluationText);
        return Build(model, model.Vocabulary.Encode(evaluationText, skipUnknownCharacters: true));
    }

    /// <summary>The report of a language model, scored by perplexity on <paramref name="evaluationTokens"/>.</summary>
    public RobustnessReport Build(QuantizedLanguageModel model, int[] evaluationTokens)
    {
        ArgumentNullException.ThrowIfNull(evaluationTokens);
        return Build(model, m => m.Evaluate(evaluationTokens).Perplexity, "perplexity", lowerIsBetter: true);
    }

    /// <summary>The report of a language model with any score, e.g. <c>m =&gt; m.Evaluate(tokens).BitsPerToken</c>.</summary>
    public RobustnessReport Build(QuantizedLanguageModel model, Func<QuantizedLanguageModel, double> metric, string metricName, bool lowerIsBetter = true)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(metric);
        return Build(model, Subject<QuantizedLanguageModel>(model.Options.Recurrent, (m, w, a, q) => m.WithQuantization(w, a, q), metric, metricName, lowerIsBetter,
            m => m.Network.WeightMatrices(), m => m.Network.Recurrent));
    }

    /// <summary>The report of a classifier over token sequences, scored by accuracy on the labelled <paramref name="sequences"/>.</summary>
    public RobustnessReport Build(QuantizedSequenceClassifier model, IReadOnlyList<int[]> sequences, int[] labels)
    {
        ArgumentNullException.ThrowIfNull(sequences);
        ArgumentNullException.ThrowIfNull(labels);
        return Build(model, m => m.Evaluate(sequences, labels).Accuracy, "accuracy", lowerIsBetter: false);
    }

    /// <summary>The report of a classifier over float frames, scored by accuracy on the labelled <paramref name="sequences"/>.</summary>
    public RobustnessReport Build(QuantizedSequenceClassifier model, IReadOnlyList<float[]> sequences, int[] labels)
    {
        ArgumentNullException.ThrowIfNull(sequences);
        ArgumentNullException.ThrowIfNull(labels);
        return Build(model, m => m.Evaluate(sequences, labels).Accuracy, "accuracy", lowerIsBetter: false);
    }

    /// <summary>The report of a classifier with any score, e.g. <c>m =&gt; m.Evaluate(x, y).AreaUnderRocCurve</c>.</summary>
    public RobustnessReport Build(QuantizedSequenceClassifier model, Func<QuantizedSequenceClassifier, double> metric, string metricName, bool lowerIsBetter = false)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(metric);
        return Build(model, Subject<QuantizedSequenceClassifier>(model.Options.Recurrent, (m, w, a, q) => m.WithQuantization(w, a, q), metric, metricName, lowerIsBetter,
            m => m.Network.WeightMatrices(), m => m.Network.Recurrent));
    }

    /// <summary>A subject whose weight statistics and gates come from the model's weight matrices and recurrent stack.</summary>
    private static RobustnessReportSubject<TModel> Subject<TModel>(QuantizedRecurrentOptions trained, Func<TModel, QuantizerOptions, QuantizerOptions?, RecurrentActivations?, TModel> requantize,
        Func<TModel, double> metric, string metricName, bool lowerIsBetter,
        Func<TModel, IEnumerable<(string Name, Tensor Weight, Quantizer Quantizer)>> weights, Func<TModel, QuantizedRecurrentStack> recurrent)
        where TModel : IDisposable => new(
            trained.WeightQuantizer, trained.ActivationQuantizer, requantize, metric, metricName, lowerIsBetter, weights, m => recurrent(m).Layers);

    /// <summary>The report of any model kind described by <paramref name="subject"/>.</summary>
    internal RobustnessReport Build<TModel>(TModel model, RobustnessReportSubject<TModel> subject) where TModel : IDisposable
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(subject);
        var (bitWidths, activationBits, perTensorBits) = Validate(subject.MetricName);
        if (activationBits.Length > 0 && subject.TrainedActivations.Kind != QuantizerKind.None)
            throw new ArgumentException(
                $"RobustnessReportBuilder.ActivationBitWidths: the model was trained with quantized activations ({QuantizerRegistry.NameOf(subject.TrainedActivations)}); " +
                "post-training activation rows compare float activations with quantized ones, so use an empty list for this model.", "RobustnessReportBuilder.ActivationBitWidths");

        var trained = subject.TrainedQuantizer;
        bool trainedFloat = trained.Kind == QuantizerKind.None;
        IReadOnlyList<GateStatistics> gates = Array.Empty<GateStatistics>();
        double trainedMetric;
        using (var recorder = RecordGates ? new GateActivationRecorder(subject.RecurrentLayers(model)) : null)
        {
            trainedMetric = subject.Metric(model);
            if (recorder is not null) gates = recorder.Statistics();
        }
        var trainedRow = new RobustnessReportRow(trainedFloat ? "float" : "as trained", QuantizerRegistry.NameOf(trained),
            QuantizerRegistry.EffectiveBits(trained), trainedMetric, WeightError(subject, model));

        var rows = new List<RobustnessReportRow>();
        if (!trainedFloat) rows.Add(Measure(model, subject, "float", new QuantizerOptions()));
        rows.Add(trainedRow);
        foreach (var bits in bitWidths)
            rows.Add(Measure(model, subject, $"{bits}-bit", Uniform(bits)));

        var steps = new List<RobustnessReportRow>();
        var exact = Uniform(PerturbationBits);
        if (StepSizeMultipliers.Count > 0 || IncludePowerOfTwoStep)
        {
            var exactRow = rows.FirstOrDefault(r => r.Quantizer == QuantizerRegistry.NameOf(exact) && r.Label.EndsWith("-bit", StringComparison.Ordinal))
                ?? Measure(model, subject, "exact step", exact);
            steps.Add(exactRow with { Label = "exact step" });
        }
        foreach (var m in StepSizeMultipliers)
        {
            var options = Uniform(PerturbationBits);
            options.StepSizeMultiplier = m;
            var change = (m - 1) * 100;
            steps.Add(Measure(model, subject, $"step {(change >= 0 ? "+" : "")}{change.ToString("0.##", CultureInfo.InvariantCulture)}%", options));
        }
        if (IncludePowerOfTwoStep)
        {
            var options = Uniform(PerturbationBits);
            options.PowerOfTwoScale = true;
            steps.Add(Measure(model, subject, "power-of-two step", options));
        }
        var activations = new List<RobustnessReportRow>();
        foreach (var weights in activationBits.Length == 0 ? [] : new[] { trained, exact })
        {
            foreach (var bits in activationBits)
                activations.Add(Measure(model, subject, $"{ActivationsLabel(QuantizedActivations)} {bits}-bit", weights, new QuantizerOptions { Kind = QuantizerKind.Uniform, Bits = bits },
                    QuantizedActivations));
        }
        var perTensor = perTensorBits.SelectMany(bits => OneTensorAtATime(model, subject, Uniform(bits))).ToList();
        return new RobustnessReport(subject.MetricName, subject.LowerIsBetter, QuantizerRegistry.NameOf(trained), rows, PerturbationBits, steps, activations,
            perTensor, subject.Matrices(model).Select(w => WeightStatistics.Of(w.Name, w.Weight)).ToList(), gates);
    }

    /// <summary>
    /// The <see cref="PerTensorBitWidths"/> rows of one bit width: a float copy of the model scored with one tensor, then
    /// one gate block of it, replaced by its values in the <paramref name="options"/> copy (restored after each score).
    /// </summary>
    private static List<RobustnessReportRow> OneTensorAtATime<TModel>(TModel model, RobustnessReportSubject<TModel> subject, QuantizerOptions options)
        where TModel : IDisposable
    {
        var rows = new List<RobustnessReportRow>();
        string name = QuantizerRegistry.NameOf(options);
        int bits = QuantizerRegistry.EffectiveBits(options);
        using var reference = subject.Requantize(model, new QuantizerOptions(), null, null);
        using var quantized = subject.Requantize(model, options, null, null);
        var targets = subject.Matrices(reference).ToList();
        var sources = subject.Matrices(quantized).ToList();
        // The gate blocks of each recurrent weight, found by the tensor itself rather than by its place in the list.
        var gatesOf = subject.RecurrentLayers(reference).SelectMany(l => new[] { (Weight: (Tensor)l.WeightIh, l.Gates), (Weight: (Tensor)l.WeightHh, l.Gates) }).ToList();
        using var noGrad = no_grad();
        for (int j = 0; j < sources.Count; j++)
        {
            if (sources[j].Quantizer.IsIdentity) continue;
            using var scope = NewDisposeScope();
            var target = targets[j].Weight;
            var original = target.detach().clone();
            var values = sources[j].Quantizer.forward(sources[j].Weight.detach());
            var blocks = new List<(string Label, long First, long Count)> { (sources[j].Name, 0, target.shape[0]) };
            if (gatesOf.FirstOrDefault(r => ReferenceEquals(r.Weight, target)).Gates is { } gates)
            {
                long rowsPerGate = target.shape[0] / gates.Count;
                blocks.AddRange(gates.Select((g, k) => ($"{sources[j].Name}, {g} gate", k * rowsPerGate, rowsPerGate)));
            }
            foreach (var (label, first, count) in blocks)
            {
                var block = target.narrow(0, first, count);
                block.copy_(values.narrow(0, first, count));
                double metric = subject.Metric(reference);
                block.copy_(original.narrow(0, first, count));
                rows.Add(new RobustnessReportRow(label, name, bits, metric, QuantizationError.Relative(original.narrow(0, first, count), values.narrow(0, first, count))));
            }
        }
        return rows;
    }

    private static double WeightError<TModel>(RobustnessReportSubject<TModel> subject, TModel model) where TModel : IDisposable =>
        QuantizationError.Relative(subject.Matrices(model).Where(w => !w.Quantizer.IsIdentity));

    /// <summary>
    /// The activation rows' label: <c>activations</c> for the model's own choice, else what is quantized, e.g.
    /// <c>gates + cell state</c>.
    /// </summary>
    private static string ActivationsLabel(RecurrentActivations? quantized) => quantized is not { } targets ? "activations"
        : string.Join(" + ", new[] { (RecurrentActivations.Gates, "gates"), (RecurrentActivations.Hidden, "hidden state"), (RecurrentActivations.CellState, "cell state") }
            .Where(t => targets.HasFlag(t.Item1)).Select(t => t.Item2));

    private QuantizerOptions Uniform(int bits) => new() { Kind = QuantizerKind.Uniform, Bits = bits, PerRowScale = PerRowScale, MinimumErrorStep = MinimumErrorStep };

    private static RobustnessReportRow Measure<TModel>(TModel model, RobustnessReportSubject<TModel> subject, string label, QuantizerOptions options,
        QuantizerOptions? activations = null, RecurrentActivations? quantizedActivations = null)
        where TModel : IDisposable
    {
        using var quantized = subject.Requantize(model, options, activations, quantizedActivations);
        return new RobustnessReportRow(label, QuantizerRegistry.NameOf(options), QuantizerRegistry.EffectiveBits(options),
            subject.Metric(quantized), WeightError(subject, quantized));
    }

    /// <summary>Checks the settings; returns the weight, activation and per-tensor bit widths sorted and without repeats.</summary>
    private (int[] Weights, int[] Activations, int[] PerTensor) Validate(string metricName)
    {
        if (string.IsNullOrWhiteSpace(metricName))
            throw new ArgumentException("The metric needs a name, e.g. \"perplexity\".", nameof(metricName));
        var weights = CheckedBits(BitWidths, "RobustnessReportBuilder.BitWidths");
        CheckBits(PerturbationBits, "RobustnessReportBuilder.PerturbationBits");
        if (StepSizeMultipliers is null)
            throw new ArgumentNullException("RobustnessReportBuilder.StepSizeMultipliers", "RobustnessReportBuilder.StepSizeMultipliers must not be null; use an empty list for none.");
        foreach (var m in StepSizeMultipliers)
        {
            if (!double.IsFinite(m) || m <= 0)
                throw new ArgumentOutOfRangeException("RobustnessReportBuilder.StepSizeMultipliers", m,
                    $"RobustnessReportBuilder.StepSizeMultipliers holds {m.ToString(CultureInfo.InvariantCulture)}: each must be finite and > 0 (e.g. 0.95 for a step 5% small).");
        }
        return (weights, CheckedBits(ActivationBitWidths, "RobustnessReportBuilder.ActivationBitWidths"), CheckedBits(PerTensorBitWidths, "RobustnessReportBuilder.PerTensorBitWidths"));
    }

    /// <summary>The bit widths of the list named <paramref name="name"/>, each checked, sorted and without repeats.</summary>
    private static int[] CheckedBits(IList<int>? bitWidths, string name)
    {
        if (bitWidths is null) throw new ArgumentNullException(name, $"{name} must not be null; use an empty list for none.");
        foreach (var bits in bitWidths)
            CheckBits(bits, name);
        return bitWidths.Distinct().Order().ToArray();
    }

    private static void CheckBits(int bits, string name)
    {
        if (bits is < 2 or > 8)
            throw new ArgumentOutOfRangeException(name, bits, $"{name} holds {bits}: uniform post-training quantization takes 2-8 bits.");
    }
}
