namespace Microsoft.ML.Quantized.Sweep;

/// <summary>
/// What a quantization sweep may try: weight quantizer and bit width (valid pairs only), activation quantizer,
/// activation slope lambda, in-cell normalization, cell, hidden size, learning rate and KURE on/off. Narrow or widen
/// it in code by editing the lists and ranges, e.g.
/// <c>space.Cells = [RecurrentCellKind.Gru]; space.WeightQuantizers.Add(QuantizerChoice.Uniform(3, powerOfTwoScale: true));</c>.
/// The defaults cover the four papers the library implements. Validated when the experiment starts; every message
/// names the property.
/// </summary>
public sealed class QuantizationSearchSpace
{
    // Axis order of the compiled space (tuners and grids use it; the grid varies the last axis fastest).
    internal const int WeightAxis = 0, ActivationAxis = 1, SlopeAxis = 2, NormalizationAxis = 3, CellAxis = 4,
        HiddenAxis = 5, LearningRateAxis = 6, KureAxis = 7;

    /// <summary>
    /// Weight quantizers. Default: every weight method at its paper widths: BinaryConnect, StochasticBinary,
    /// BinaryWeightNet (1 bit), TernaryWeightNet, ThresholdTernary (2-bit codes), AlternatingMultiBit 2-3 and
    /// Uniform 2-8 (see <see cref="AllWeightQuantizers"/>). Add <see cref="QuantizerChoice.Float"/> for a float baseline.
    /// </summary>
    public IList<QuantizerChoice> WeightQuantizers { get; set; } = AllWeightQuantizers().ToList();

    /// <summary>
    /// Activation quantizers: None, BernoulliTernary or Uniform k. Default None, BernoulliTernary (HitNet) and
    /// Uniform 4. Any activation quantizer makes the recurrent layer run its (slower) cell loop.
    /// </summary>
    public IList<QuantizerChoice> ActivationQuantizers { get; set; } =
        [QuantizerChoice.Float, QuantizerChoice.BernoulliTernary, QuantizerChoice.Uniform(4)];

    /// <summary>
    /// HitNet's activation slope lambda, one value for every gate (sigma(x / lambda), tanh(x / lambda)).
    /// Default [0.25, 1] (HitNet's range). A slope other than 1 runs the cell loop; fix it with
    /// <c>SearchRange.Fixed(1)</c> to keep the fused kernel.
    /// </summary>
    public SearchRange ActivationSlope { get; set; } = new(0.25, 1.0);

    /// <summary>In-cell normalizations. Default all five (None, Weight, Layer, BatchShared, BatchPerStep).</summary>
    public IList<RecurrentNormalization> Normalizations { get; set; } =
    [
        RecurrentNormalization.None, RecurrentNormalization.Weight, RecurrentNormalization.Layer,
        RecurrentNormalization.BatchShared, RecurrentNormalization.BatchPerStep,
    ];

    /// <summary>Recurrent cells. Default LSTM and GRU.</summary>
    public IList<RecurrentCellKind> Cells { get; set; } = [RecurrentCellKind.Lstm, RecurrentCellKind.Gru];

    /// <summary>Hidden sizes to choose from. Default 64, 128, 256. Ignored when <see cref="HiddenSizeRange"/> is set.</summary>
    public IList<int> HiddenSizes { get; set; } = [64, 128, 256];

    /// <summary>
    /// An integer range of hidden sizes (use <see cref="SearchRange.Log"/> for a log scale); when set it replaces
    /// <see cref="HiddenSizes"/>. Default null (use the list).
    /// </summary>
    public SearchRange? HiddenSizeRange { get; set; }

    /// <summary>Learning rate, log scale. Default [1e-3, 3e-2] (Adam; the trial runner picks the optimizer).</summary>
    public SearchRange LearningRate { get; set; } = SearchRange.Log(1e-3, 3e-2);

    /// <summary>
    /// Kurtosis regularization (KURE, Shkolnik et al. 2020) off and/or on; the trial runner maps it to the
    /// training options. Default both.
    /// </summary>
    public IList<bool> UseKure { get; set; } = [false, true];

    /// <summary>
    /// Every valid weight quantizer at the widths the papers use: bc, sbc, bwn (1 bit), twn, ttq (2-bit codes),
    /// alt2, alt3 and uniform2-uniform8, plus uniform2-pow2..uniform8-pow2 when <paramref name="includePowerOfTwo"/> is true.
    /// </summary>
    public static IReadOnlyList<QuantizerChoice> AllWeightQuantizers(bool includePowerOfTwo = false)
    {
        var list = new List<QuantizerChoice>
        {
            QuantizerChoice.BinaryConnect, QuantizerChoice.StochasticBinary, QuantizerChoice.BinaryWeightNet,
            QuantizerChoice.TernaryWeightNet, QuantizerChoice.ThresholdTernary,
            QuantizerChoice.Alternating(2), QuantizerChoice.Alternating(3),
        };
        for (int bits = 2; bits <= 8; bits++) list.Add(QuantizerChoice.Uniform(bits));
        if (includePowerOfTwo)
            for (int bits = 2; bits <= 8; bits++) list.Add(QuantizerChoice.Uniform(bits, powerOfTwoScale: true));
        return list;
    }

    /// <summary>Whether <paramref name="configuration"/> lies in this space (every value among the choices or in range).</summary>
    public bool Contains(QuantizationConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        Validate();
        return Encode(configuration) is not null;
    }

    /// <summary>
    /// Number of configurations a <see cref="GridTuner"/> with <paramref name="pointsPerRange"/> points per
    /// numeric range enumerates (the product of the axis sizes).
    /// </summary>
    public long GridSize(int pointsPerRange = GridTuner.DefaultPointsPerRange)
    {
        GridTuner.CheckPoints(pointsPerRange);
        Validate();
        long size = 1;
        foreach (var d in Dimensions()) size = checked(size * d.GridValues(pointsPerRange).Count);
        return size;
    }

    /// <summary>Copies this space (the lists are copied too).</summary>
    public QuantizationSearchSpace Clone() => new()
    {
        WeightQuantizers = WeightQuantizers?.ToList()!,
        ActivationQuantizers = ActivationQuantizers?.ToList()!,
        ActivationSlope = ActivationSlope,
        Normalizations = Normalizations?.ToList()!,
        Cells = Cells?.ToList()!,
        HiddenSizes = HiddenSizes?.ToList()!,
        HiddenSizeRange = HiddenSizeRange,
        LearningRate = LearningRate,
        UseKure = UseKure?.ToList()!,
    };

    /// <summary>The one place the space is checked; messages name the property, the bad value and the fix.</summary>
    internal void Validate()
    {
        const string prefix = "QuantizationSearchSpace.";
        NotEmpty(WeightQuantizers, prefix + nameof(WeightQuantizers));
        for (int i = 0; i < WeightQuantizers.Count; i++)
        {
            var name = $"{prefix}{nameof(WeightQuantizers)}[{i}]";
            QuantizerRegistry.Validate(WeightQuantizers[i]?.ToOptions() ?? throw new ArgumentNullException(name, $"{name} is null."), name);
        }
        NotEmpty(ActivationQuantizers, prefix + nameof(ActivationQuantizers));
        for (int i = 0; i < ActivationQuantizers.Count; i++)
        {
            var name = $"{prefix}{nameof(ActivationQuantizers)}[{i}]";
            QuantizerRegistry.ValidateActivation(ActivationQuantizers[i]?.ToOptions() ?? throw new ArgumentNullException(name, $"{name} is null."), name);
        }
        CheckRange(ActivationSlope, prefix + nameof(ActivationSlope), 0, 4, "HitNet lambda: (0, 4], e.g. [0.25, 1]");
        if (ActivationSlope.Min <= 0)
            throw new ArgumentOutOfRangeException(prefix + nameof(ActivationSlope), ActivationSlope,
                $"{prefix}{nameof(ActivationSlope)} = {ActivationSlope} must be inside (0, 4]; HitNet uses [0.25, 1].");
        NotEmpty(Normalizations, prefix + nameof(Normalizations));
        foreach (var n in Normalizations)
            if (!Enum.IsDefined(n))
                throw new ArgumentOutOfRangeException(prefix + nameof(Normalizations), n, $"{prefix}{nameof(Normalizations)} holds {(int)n}, not a RecurrentNormalization.");
        NotEmpty(Cells, prefix + nameof(Cells));
        foreach (var c in Cells)
            if (!Enum.IsDefined(c))
                throw new ArgumentOutOfRangeException(prefix + nameof(Cells), c, $"{prefix}{nameof(Cells)} holds {(int)c}; use Lstm or Gru.");
        if (HiddenSizeRange is null)
        {
            NotEmpty(HiddenSizes, prefix + nameof(HiddenSizes));
            foreach (var h in HiddenSizes)
                if (h < 1)
                    throw new ArgumentOutOfRangeException(prefix + nameof(HiddenSizes), h, $"{prefix}{nameof(HiddenSizes)} holds {h}; hidden sizes must be at least 1.");
        }
        else
        {
            CheckRange(HiddenSizeRange, prefix + nameof(HiddenSizeRange), 1, int.MaxValue, "at least 1, e.g. SearchRange.Log(32, 512)");
        }
        CheckRange(LearningRate, prefix + nameof(LearningRate), 0, 1e6, "positive, e.g. SearchRange.Log(1e-3, 3e-2)");
        if (LearningRate.Min <= 0)
            throw new ArgumentOutOfRangeException(prefix + nameof(LearningRate), LearningRate, $"{prefix}{nameof(LearningRate)} = {LearningRate} must be positive, e.g. SearchRange.Log(1e-3, 3e-2).");
        NotEmpty(UseKure, prefix + nameof(UseKure));
    }

    /// <summary>The axes, in the order of the axis constants.</summary>
    internal IReadOnlyList<SearchDimension> Dimensions() => new[]
    {
        SearchDimension.Categorical("weight", WeightQuantizers.Count),
        SearchDimension.Categorical("activation", ActivationQuantizers.Count),
        SearchDimension.Numeric("slope", ActivationSlope, isInteger: false),
        SearchDimension.Categorical("normalization", Normalizations.Count),
        SearchDimension.Categorical("cell", Cells.Count),
        HiddenSizeRange is null ? SearchDimension.Categorical("hidden", HiddenSizes.Count) : SearchDimension.Numeric("hidden", HiddenSizeRange, isInteger: true),
        SearchDimension.Numeric("learningRate", LearningRate, isInteger: false),
        SearchDimension.Categorical("kure", UseKure.Count),
    };

    /// <summary>The configuration at a point of the compiled space (values already snapped).</summary>
    internal QuantizationConfiguration Decode(IReadOnlyList<double> point) => new()
    {
        WeightQuantizer = WeightQuantizers[(int)point[WeightAxis]],
        ActivationQuantizer = ActivationQuantizers[(int)point[ActivationAxis]],
        ActivationSlope = point[SlopeAxis],
        Normalization = Normalizations[(int)point[NormalizationAxis]],
        Cell = Cells[(int)point[CellAxis]],
        HiddenSize = HiddenSizeRange is null ? HiddenSizes[(int)point[HiddenAxis]] : (int)point[HiddenAxis],
        LearningRate = point[LearningRateAxis],
        UseKure = UseKure[(int)point[KureAxis]],
    };

    /// <summary>The point of <paramref name="c"/> in the compiled space, or null when it lies outside.</summary>
    internal double[]? Encode(QuantizationConfiguration c)
    {
        var dims = Dimensions();
        var point = new double[]
        {
            WeightQuantizers.IndexOf(c.WeightQuantizer),
            ActivationQuantizers.IndexOf(c.ActivationQuantizer),
            c.ActivationSlope,
            Normalizations.IndexOf(c.Normalization),
            Cells.IndexOf(c.Cell),
            HiddenSizeRange is null ? HiddenSizes.IndexOf(c.HiddenSize) : c.HiddenSize,
            c.LearningRate,
            UseKure.IndexOf(c.UseKure),
        };
        for (int i = 0; i < dims.Count; i++)
            if (!dims[i].Contains(point[i])) return null;
        return point;
    }

    private static void NotEmpty<T>(IList<T>? list, string name)
    {
        if (list is null || list.Count == 0)
            throw new ArgumentException($"{name} is empty; give at least one choice.", name);
        if (list.Distinct().Count() != list.Count)
            throw new ArgumentException($"{name} lists a choice twice ({string.Join(", ", list)}); list each choice once.", name);
    }

    private static void CheckRange(SearchRange? range, string name, double lowest, double highest, string hint)
    {
        if (range is null) throw new ArgumentNullException(name, $"{name} is null; expected a range {hint}.");
        if (!double.IsFinite(range.Min) || !double.IsFinite(range.Max) || range.Min > range.Max)
            throw new ArgumentOutOfRangeException(name, range, $"{name} = {range} needs finite ends with Min <= Max ({hint}).");
        if (range.Min < lowest || range.Max > highest)
            throw new ArgumentOutOfRangeException(name, range, $"{name} = {range} is out of bounds: {hint}.");
        if (range.LogScale && range.Min <= 0)
            throw new ArgumentOutOfRangeException(name, range, $"{name} = {range}: a log-scale range needs Min > 0.");
    }
}
