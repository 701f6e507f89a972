namespace Microsoft.ML.Quantized;

/// <summary>The one place options are checked. Each message names the option, the bad value and the valid range.</summary>
internal static class OptionsValidator
{
    public static void Validate(TrainingOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        AtLeast(options.Epochs, 1, "TrainingOptions.Epochs");
        AtLeast(options.BatchSize, 1, "TrainingOptions.BatchSize");
        AtLeast(options.SequenceLength, 1, "TrainingOptions.SequenceLength");
        Positive(options.LearningRate, "TrainingOptions.LearningRate");
        if (options.LearningRate > 1e6)
            throw new ArgumentOutOfRangeException("TrainingOptions.LearningRate", options.LearningRate, $"TrainingOptions.LearningRate must be at most 1e6; got {options.LearningRate}. Typical values: 20 for SGD (PTB recipe), 1e-3 to 3e-3 for Adam.");
        if (!double.IsFinite(options.LearningRateDecay) || options.LearningRateDecay < 1)
            throw new ArgumentOutOfRangeException("TrainingOptions.LearningRateDecay", options.LearningRateDecay, "TrainingOptions.LearningRateDecay must be at least 1 (1 = never decay).");
        NonNegative(options.GradientClipNorm, "TrainingOptions.GradientClipNorm");
        NonNegative(options.WeightDecay, "TrainingOptions.WeightDecay");
        AtLeast(options.EarlyStoppingPatience, 0, "TrainingOptions.EarlyStoppingPatience");
        AtLeast(options.MaxStepsPerEpoch, 0, "TrainingOptions.MaxStepsPerEpoch");
        AtLeast(options.BatchNormRecalibrationSteps, 0, "TrainingOptions.BatchNormRecalibrationSteps");
        Probability(options.StateResetProbability, "TrainingOptions.StateResetProbability");
        AtLeast(options.ProgressInterval, 1, "TrainingOptions.ProgressInterval");
        DeviceResolver.Resolve(options.Device);
        if (options.Kure is not null) Validate(options.Kure);
    }

    /// <summary>KURE: Lambda finite and &gt;= 0, Target in (1, 10], Tensors a combination of the defined flags.</summary>
    public static void Validate(KureOptions options)
    {
        ArgumentNullException.ThrowIfNull(options, "KureOptions");
        if (!double.IsFinite(options.Lambda) || options.Lambda < 0)
            throw new ArgumentOutOfRangeException("KureOptions.Lambda", options.Lambda,
                $"KureOptions.Lambda must be zero or a positive finite number; got {options.Lambda}. The paper uses 1.0; 0 turns the term off.");
        if (!Enum.IsDefined(options.Statistic))
            throw new ArgumentOutOfRangeException("KureOptions.Statistic", options.Statistic, "KureOptions.Statistic must be Kurtosis or AbsoluteCoefficientOfVariation.");
        if (options.Statistic == UniformityStatistic.Kurtosis && !(options.Target > 1 && options.Target <= 10))
            throw new ArgumentOutOfRangeException("KureOptions.Target", options.Target,
                $"KureOptions.Target must be in (1, 10] (every distribution has kurtosis >= 1); got {options.Target}. Use 1.8 (uniform), the paper's target.");
        if (options.Statistic == UniformityStatistic.AbsoluteCoefficientOfVariation && !(options.Target > 0 && options.Target <= 1))
            throw new ArgumentOutOfRangeException("KureOptions.Target", options.Target,
                $"KureOptions.Target must be in (0, 1] with Statistic = AbsoluteCoefficientOfVariation; got {options.Target}" +
                (options.Target == KureOptions.UniformKurtosis ? " (the kurtosis default)" : "") +
                ". Use KureOptions.UniformAbsoluteCoefficientOfVariation (0.577, uniform).");
        if ((options.Tensors & ~KurtosisTensors.All) != 0)
            throw new ArgumentOutOfRangeException("KureOptions.Tensors", options.Tensors,
                $"KureOptions.Tensors = {(int)options.Tensors} is not a combination of Recurrent, Embedding and Decoder.");
    }

    public static void Validate(QuantizedRecurrentOptions options, string name = "QuantizedRecurrentOptions")
    {
        ArgumentNullException.ThrowIfNull(options);
        if (!Enum.IsDefined(options.Cell)) throw new ArgumentOutOfRangeException($"{name}.Cell", options.Cell, $"{name}.Cell must be Lstm or Gru.");
        if (!Enum.IsDefined(options.Normalization)) throw new ArgumentOutOfRangeException($"{name}.Normalization", options.Normalization, $"{name}.Normalization is not a RecurrentNormalization value.");
        if (!Enum.IsDefined(options.LayerNormForm)) throw new ArgumentOutOfRangeException($"{name}.LayerNormForm", options.LayerNormForm, $"{name}.LayerNormForm must be PerGate or Joint.");
        AtLeast(options.HiddenSize, 1, $"{name}.HiddenSize");
        AtLeast(options.Layers, 1, $"{name}.Layers");
        AtLeast(options.MaxNormalizedSteps, 1, $"{name}.MaxNormalizedSteps");
        Probability(options.Dropout, $"{name}.Dropout");
        QuantizerRegistry.Validate(options.WeightQuantizer ?? throw new ArgumentNullException($"{name}.WeightQuantizer"), $"{name}.WeightQuantizer");
        QuantizerRegistry.ValidateActivation(options.ActivationQuantizer ?? throw new ArgumentNullException($"{name}.ActivationQuantizer"), $"{name}.ActivationQuantizer");
        Validate(options.QuantizedActivations, options.Cell, options.ActivationQuantizer, name);
        var s = options.Slopes ?? throw new ArgumentNullException($"{name}.Slopes");
        Slope(s.InputGate, $"{name}.Slopes.InputGate");
        Slope(s.ForgetGate, $"{name}.Slopes.ForgetGate");
        Slope(s.OutputGate, $"{name}.Slopes.OutputGate");
        Slope(s.Candidate, $"{name}.Slopes.Candidate");
        Slope(s.CellOutput, $"{name}.Slopes.CellOutput");
    }

    /// <summary>Checks <see cref="QuantizedRecurrentOptions.QuantizedActivations"/> against the cell and the activation quantizer.</summary>
    private static void Validate(RecurrentActivations activations, RecurrentCellKind cell, QuantizerOptions quantizer, string name)
    {
        const RecurrentActivations all = RecurrentActivations.Gates | RecurrentActivations.Hidden | RecurrentActivations.CellState;
        string option = $"{name}.QuantizedActivations";
        if ((activations & ~all) != 0)
            throw new ArgumentOutOfRangeException(option, activations, $"{option} = {(int)activations} is not a combination of Gates, Hidden and CellState.");
        if (quantizer.Kind == QuantizerKind.None) return;
        if (activations == RecurrentActivations.None)
            throw new ArgumentOutOfRangeException(option, activations,
                $"{option} is None but {name}.ActivationQuantizer is {QuantizerRegistry.NameOf(quantizer)}: name the activations to quantize (default Gates | Hidden), or set the activation quantizer to none.");
        if (!activations.HasFlag(RecurrentActivations.CellState)) return;
        if (cell != RecurrentCellKind.Lstm)
            throw new ArgumentOutOfRangeException(option, activations, $"{option} includes CellState, but a {cell} has no cell state; use Gates and/or Hidden.");
        if (quantizer.Kind != QuantizerKind.Uniform)
            throw new ArgumentOutOfRangeException(option, activations,
                $"{option} includes CellState with the {QuantizerRegistry.NameOf(quantizer)} activation quantizer: the cell state is unbounded, so only a uniform " +
                "quantizer (e.g. uniform8, whose step follows max |c| per step) can quantize it.");
    }

    public static void Validate(LanguageModelOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        Validate(options.Recurrent ?? throw new ArgumentNullException("LanguageModelOptions.Recurrent"), "LanguageModelOptions.Recurrent");
        AtLeast(options.EmbeddingSize, 0, "LanguageModelOptions.EmbeddingSize");
        Probability(options.EmbeddingDropout, "LanguageModelOptions.EmbeddingDropout");
    }

    public static void Validate(SequenceClassifierOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        Validate(options.Recurrent ?? throw new ArgumentNullException("SequenceClassifierOptions.Recurrent"), "SequenceClassifierOptions.Recurrent");
        AtLeast(options.ClassCount, 2, "SequenceClassifierOptions.ClassCount");
        AtLeast(options.VocabularySize, 0, "SequenceClassifierOptions.VocabularySize");
        AtLeast(options.EmbeddingSize, 0, "SequenceClassifierOptions.EmbeddingSize");
        AtLeast(options.FrameSize, 1, "SequenceClassifierOptions.FrameSize");
        Probability(options.Dropout, "SequenceClassifierOptions.Dropout");
        NonNegative(options.InitialStateNoise, "SequenceClassifierOptions.InitialStateNoise");
        if (!Enum.IsDefined(options.Pooling))
            throw new ArgumentOutOfRangeException("SequenceClassifierOptions.Pooling", options.Pooling, "SequenceClassifierOptions.Pooling must be Last, Mean or Max.");
        if (options.EmbeddingQuantizer is not null) QuantizerRegistry.Validate(options.EmbeddingQuantizer, "SequenceClassifierOptions.EmbeddingQuantizer");
    }

    private static void AtLeast(int value, int minimum, string name)
    {
        if (value < minimum) throw new ArgumentOutOfRangeException(name, value, $"{name} must be at least {minimum}; got {value}.");
    }

    private static void Positive(double value, string name)
    {
        if (!double.IsFinite(value) || value <= 0) throw new ArgumentOutOfRangeException(name, value, $"{name} must be a positive finite number; got {value}.");
    }

    private static void NonNegative(double value, string name)
    {
        if (!double.IsFinite(value) || value < 0) throw new ArgumentOutOfRangeException(name, value, $"{name} must be zero or a positive finite number; got {value}.");
    }

    private static void Probability(double value, string name)
    {
        if (!(value >= 0 && value < 1)) throw new ArgumentOutOfRangeException(name, value, $"{name} must be in [0, 1); got {value}.");
    }

    private static void Slope(double value, string name) => SlopeChecks.Check(value, name);
}
