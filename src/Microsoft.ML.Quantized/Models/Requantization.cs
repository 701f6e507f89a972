using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized;

/// <summary>
/// Post-training re-quantization: a new network with another weight quantizer (and optionally another activation
/// quantizer and the activations it quantizes) and the same float shadow weights, biases and normalization state, without
/// retraining (KURE's "one model, many bit widths").
/// </summary>
/// <remarks>
/// The state is copied entry by entry, by state-dictionary name, into a network built from the new options (same
/// shapes by construction). State owned by the <em>weight</em> quantizers (the learned step of <c>uniformK-lsq</c>)
/// belongs to one quantizer configuration: it is copied only when the old and new weight quantizers have the same
/// registry name, and otherwise left as the new quantizer creates it (a learned step is then initialized from
/// <c>max |w| / Qp</c> at its first use, exactly as at the start of training). The same holds for the activation
/// quantizers' state: copied when the activation quantizer and the activations it quantizes are unchanged, fresh otherwise. A float model re-quantized to float keeps its weights bit for bit; a model trained
/// without float shadow weights (<see cref="TrainingOptions.KeepFloatShadowWeights"/> = false) starts from its
/// weights as they lie on the old grid.
/// </remarks>
internal static class Requantization
{
    /// <summary>Checks the new weight quantizer (naming <paramref name="optionName"/>) and returns a copy of it.</summary>
    public static QuantizerOptions Checked(QuantizerOptions weights, string optionName = "weights")
    {
        if (weights is null) throw new ArgumentNullException(optionName, $"{optionName} must not be null; use new QuantizerOptions() for float weights.");
        QuantizerRegistry.Validate(weights, optionName);
        return weights.Clone();
    }

    /// <summary>
    /// A copy of <paramref name="options"/> whose weight quantizer is <paramref name="weights"/> and, unless null, whose
    /// activation quantizer is <paramref name="activations"/> and whose quantized activations are
    /// <paramref name="quantizedActivations"/> (all validated).
    /// </summary>
    public static LanguageModelOptions OptionsWith(LanguageModelOptions options, QuantizerOptions weights, QuantizerOptions? activations = null,
        RecurrentActivations? quantizedActivations = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        var copy = options.Clone();
        With(copy.Recurrent, weights, activations, quantizedActivations);
        OptionsValidator.Validate(copy);
        return copy;
    }

    /// <summary>
    /// A copy of <paramref name="options"/> whose recurrent (and, when quantized, head) weight quantizer is
    /// <paramref name="weights"/> and, unless null, whose activation quantizer is <paramref name="activations"/> and whose
    /// quantized activations are <paramref name="quantizedActivations"/>; a separately chosen
    /// <see cref="SequenceClassifierOptions.EmbeddingQuantizer"/> stays.
    /// </summary>
    public static SequenceClassifierOptions OptionsWith(SequenceClassifierOptions options, QuantizerOptions weights, QuantizerOptions? activations = null,
        RecurrentActivations? quantizedActivations = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        var copy = options.Clone();
        With(copy.Recurrent, weights, activations, quantizedActivations);
        OptionsValidator.Validate(copy);
        return copy;
    }

    /// <summary>
    /// Sets the checked <paramref name="weights"/> and, when given, the checked <paramref name="activations"/> and
    /// <paramref name="quantizedActivations"/> on <paramref name="recurrent"/> (a copy; the options validator checks the whole).
    /// </summary>
    private static void With(QuantizedRecurrentOptions recurrent, QuantizerOptions weights, QuantizerOptions? activations, RecurrentActivations? quantizedActivations)
    {
        recurrent.WeightQuantizer = Checked(weights, nameof(weights));
        if (quantizedActivations is { } targets) recurrent.QuantizedActivations = targets;
        if (activations is null) return;
        QuantizerRegistry.ValidateActivation(activations, nameof(activations));
        recurrent.ActivationQuantizer = activations.Clone();
    }

    /// <summary>
    /// A new network for <paramref name="options"/> on <paramref name="device"/>, in evaluation mode, holding
    /// <paramref name="source"/>'s state (see the class remarks for the weight quantizers' state).
    /// </summary>
    public static LanguageModelNetwork Copy(LanguageModelNetwork source, LanguageModelOptions sourceOptions, LanguageModelOptions options, Device device)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(sourceOptions);
        bool sameWeightQuantizer = SameWeightQuantizer(sourceOptions.Recurrent, options.Recurrent) && sourceOptions.QuantizeEmbeddingAndDecoder == options.QuantizeEmbeddingAndDecoder;
        var target = new LanguageModelNetwork(source.VocabularySize, options);
        return Fill(source, target, Fresh(sameWeightQuantizer, target.WeightMatrices().Select(m => m.Quantizer), sourceOptions.Recurrent, options.Recurrent, target.Recurrent), device);
    }

    /// <summary>The classifier counterpart of <see cref="Copy(LanguageModelNetwork, LanguageModelOptions, LanguageModelOptions, Device)"/>.</summary>
    public static SequenceClassifierNetwork Copy(SequenceClassifierNetwork source, SequenceClassifierOptions sourceOptions, SequenceClassifierOptions options, Device device)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(sourceOptions);
        var target = new SequenceClassifierNetwork(source.InputKind, source.InputSize, options);
        return Fill(source, target, Fresh(SameWeightQuantizer(sourceOptions.Recurrent, options.Recurrent), target.WeightMatrices().Select(m => m.Quantizer),
            sourceOptions.Recurrent, options.Recurrent, target.Recurrent), device);
    }

    private static bool SameWeightQuantizer(QuantizedRecurrentOptions a, QuantizedRecurrentOptions b) =>
        QuantizerRegistry.NameOf(a.WeightQuantizer) == QuantizerRegistry.NameOf(b.WeightQuantizer);

    /// <summary>
    /// The quantizers of the new network that keep their fresh state: its weight quantizers unless
    /// <paramref name="sameWeightQuantizer"/>, its activation quantizers when the activation quantizer changed.
    /// </summary>
    private static IEnumerable<Quantizer> Fresh(bool sameWeightQuantizer, IEnumerable<Quantizer> weightQuantizers,
        QuantizedRecurrentOptions sourceOptions, QuantizedRecurrentOptions options, QuantizedRecurrentStack recurrent)
    {
        var fresh = sameWeightQuantizer ? Enumerable.Empty<Quantizer>() : weightQuantizers;
        bool sameActivations = QuantizerRegistry.NameOf(sourceOptions.ActivationQuantizer) == QuantizerRegistry.NameOf(options.ActivationQuantizer)
            && sourceOptions.QuantizedActivations == options.QuantizedActivations;
        return sameActivations ? fresh : fresh.Concat(recurrent.Layers.SelectMany(l => l.ActivationQuantizers));
    }

    /// <summary>
    /// Copies <paramref name="source"/>'s state into the fresh <paramref name="target"/> (except that of the
    /// <paramref name="fresh"/> quantizers), moves it to <paramref name="device"/> in evaluation mode; disposes
    /// <paramref name="target"/> on failure.
    /// </summary>
    private static T Fill<T>(nn.Module source, T target, IEnumerable<Quantizer> fresh, Device device)
        where T : nn.Module
    {
        try
        {
            CopyState(source, target, fresh);
            target.to(device);
            target.eval();
            return target;
        }
        catch
        {
            target.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Copies every state entry (parameters and buffers) of <paramref name="source"/> into <paramref name="target"/> by name,
    /// except those owned by the modules in <paramref name="skip"/>, which keep their fresh state.
    /// </summary>
    /// <exception cref="InvalidOperationException">An entry to copy is missing from the source or has another shape.</exception>
    public static void CopyState(nn.Module source, nn.Module target, IEnumerable<nn.Module> skip)
    {
        var skipped = new HashSet<nn.Module>(skip, ReferenceEqualityComparer.Instance);
        var prefixes = target.named_modules().Where(m => skipped.Contains(m.module)).Select(m => m.name + ".").ToList();
        var from = source.state_dict();
        using var noGrad = no_grad();
        foreach (var (name, tensor) in target.state_dict())
        {
            if (prefixes.Any(p => name.StartsWith(p, StringComparison.Ordinal))) continue;
            if (!from.TryGetValue(name, out var value))
                throw new InvalidOperationException($"Re-quantization: the source model has no state entry '{name}'.");
            if (!value.shape.SequenceEqual(tensor.shape))
                throw new InvalidOperationException(
                    $"Re-quantization: state entry '{name}' is [{string.Join(", ", value.shape)}] in the source and [{string.Join(", ", tensor.shape)}] in the new model.");
            tensor.copy_(value);
        }
    }
}
