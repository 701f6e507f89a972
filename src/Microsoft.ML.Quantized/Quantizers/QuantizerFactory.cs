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
    public static Quantizer Create(QuantizerOptions options, long rows)
    {
        QuantizerRegistry.ValidateCommon(options, nameof(options));
        if (rows < 0) throw new ArgumentOutOfRangeException(nameof(rows), rows, "Row count must be 0 (unknown) or positive.");
        var perRow = options.PerRowScale;
        var multiplier = options.StepSizeMultiplier;
        return options.Kind switch
        {
            QuantizerKind.None => new IdentityQuantizer(),
            QuantizerKind.BinaryConnect => new BinaryConnectQuantizer(),
            QuantizerKind.StochasticBinary => new StochasticBinaryQuantizer(options.RealValuedEvaluation),
            QuantizerKind.BinaryWeightNet => new BinaryWeightNetQuantizer(perRow, multiplier),
            QuantizerKind.TernaryWeightNet => new TernaryWeightNetQuantizer(perRow, multiplier),
            QuantizerKind.ThresholdTernary => new ThresholdTernaryQuantizer(perRow, multiplier, options.TernaryThreshold, options.TernaryThresholdFromMaximum),
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
