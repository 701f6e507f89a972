namespace Microsoft.ML.Quantized;

/// <summary>Creates the quantizer module a <see cref="QuantizerOptions"/> (or a <see cref="QuantizerRegistry"/> name) describes.</summary>
internal static class QuantizerFactory
{
    /// <summary>Creates a new quantizer module for one tensor (weights or activations); validates the options first.</summary>
    public static Quantizer Create(QuantizerOptions options) => Create(options, 0);

    /// <summary>
    /// Creates a new quantizer module for one tensor of <paramref name="rows"/> rows. Only per-row learned or fixed state
    /// (<c>-lsq-row</c>, <c>-fixed-row</c>, <c>zttq-row</c>) uses the row count: it is then created now, before an optimizer
    /// collects parameters, and saved with the model. 0 = unknown.
    /// </summary>
    /// <remarks>
    /// <paramref name="gates"/>: the gate blocks a recurrent matrix stacks its rows in (4 for the LSTM, 3 for the GRU; 1 for
    /// any other tensor). With <see cref="QuantizerOptions.PerGateScale"/> each block gets its own scale.
    /// </remarks>
    public static Quantizer Create(QuantizerOptions options, long rows, int gates = 1)
    {
        QuantizerRegistry.ValidateCommon(options, nameof(options));
        if (rows < 0) throw new ArgumentOutOfRangeException(nameof(rows), rows, "Row count must be 0 (unknown) or positive.");
        if (gates < 1) throw new ArgumentOutOfRangeException(nameof(gates), gates, "Gate count must be at least 1.");
        var perRow = options.PerRowScale;
        var multiplier = options.StepSizeMultiplier;
        var scaleGates = options.PerGateScale ? gates : 1;
        return options.Kind switch
        {
            QuantizerKind.None => new IdentityQuantizer(),
            QuantizerKind.BinaryConnect => new BinaryConnectQuantizer(),
            QuantizerKind.StochasticBinary => new StochasticBinaryQuantizer(options.RealValuedEvaluation),
            QuantizerKind.BinaryWeightNet => new BinaryWeightNetQuantizer(perRow, multiplier, scaleGates),
            QuantizerKind.TernaryWeightNet => new TernaryWeightNetQuantizer(perRow, multiplier, scaleGates),
            QuantizerKind.ThresholdTernary => new ThresholdTernaryQuantizer(perRow, multiplier, options.TernaryThreshold, options.TernaryThresholdFromMaximum, scaleGates),
            QuantizerKind.AlternatingMultiBit => new AlternatingMultiBitQuantizer(QuantizerRegistry.EffectiveBits(options), perRow, multiplier),
            QuantizerKind.Uniform => new UniformQuantizer(options, rows),
            QuantizerKind.BernoulliTernary => new BernoulliTernaryQuantizer(),
            QuantizerKind.TrainedTernary => new TrainedTernaryQuantizer(perRow, multiplier, options.TernaryThreshold, rows),
            _ => throw new ArgumentOutOfRangeException(nameof(options), options.Kind, "Unknown quantizer kind."),
        };
    }

    /// <summary>Parses <paramref name="name"/> and creates the quantizer.</summary>
    public static Quantizer Create(string name) => Create(QuantizerRegistry.Parse(name));
}
