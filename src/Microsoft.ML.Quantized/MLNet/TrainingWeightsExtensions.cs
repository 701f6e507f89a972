using Microsoft.ML.Runtime;

namespace Microsoft.ML.Quantized;

/// <summary>
/// The float training models behind fitted ML.NET components (which live in the scoring runtime and score without
/// them): what KURE fine-tuning, re-quantization and the robustness report start from. They are present after Fit and
/// after loading a model saved with <c>KeepTrainingWeights = true</c> (see <c>HasTrainingWeights</c>).
/// </summary>
public static class TrainingWeightsExtensions
{
    /// <summary>
    /// The trained torch language model with its float training weights, owned by <paramref name="transformer"/> (do not
    /// dispose it). A transformer loaded from a file reads it from the file's training stream on first use.
    /// </summary>
    /// <exception cref="InvalidOperationException">The model was saved without its training weights (<see cref="QuantizedRecurrentLanguageModelTransformer.HasTrainingWeights"/> is false).</exception>
    /// <exception cref="ObjectDisposedException">The transformer was disposed.</exception>
    public static QuantizedLanguageModel GetTrainingModel(this QuantizedRecurrentLanguageModelTransformer transformer) => transformer.UseModel(m => m);

    /// <summary>
    /// The trained torch classifier with its float training weights, owned by <paramref name="parameters"/> (do not
    /// dispose it). Parameters loaded from a file read it from the file's training stream on first use.
    /// </summary>
    /// <exception cref="InvalidOperationException">The model was saved without its training weights (<see cref="SequenceClassifierModelParameters.HasTrainingWeights"/> is false).</exception>
    /// <exception cref="ObjectDisposedException">The parameters were disposed.</exception>
    public static QuantizedSequenceClassifier GetTrainingClassifier(this SequenceClassifierModelParameters parameters) => parameters.UseClassifier(c => c);

    /// <summary>Runs <paramref name="use"/> on the training model under the transformer's lock (fine-tuning and re-quantization take turns; scoring does not wait).</summary>
    internal static T UseModel<T>(this QuantizedRecurrentLanguageModelTransformer transformer, Func<QuantizedLanguageModel, T> use)
    {
        ArgumentNullException.ThrowIfNull(transformer);
        return transformer.Parts.UseTraining(s => QuantizedLanguageModel.Load(s), use, QuantizedRecurrentLanguageModelTransformer.NoTrainingWeightsMessage);
    }

    /// <summary>Runs <paramref name="use"/> on the training classifier under the parameters' lock.</summary>
    internal static T UseClassifier<T>(this SequenceClassifierModelParameters parameters, Func<QuantizedSequenceClassifier, T> use)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return parameters.Parts.UseTraining(s => QuantizedSequenceClassifier.Load(s), use, SequenceClassifierModelParameters.NoTrainingWeightsMessage);
    }

    /// <summary>A transformer with the same columns, settings and key map around <paramref name="model"/> (which it then owns).</summary>
    internal static QuantizedRecurrentLanguageModelTransformer WithModel(this QuantizedRecurrentLanguageModelTransformer transformer, QuantizedLanguageModel model, IHostEnvironment? env = null) =>
        TrainedModelParts.OwnedBy(model, m => transformer.WithParts(TrainedModelParts.Of(m), env));

    /// <summary>
    /// Parameters of the same kind over <paramref name="parameters"/>' training classifier re-quantized to <paramref name="weights"/>
    /// and, unless null, <paramref name="activations"/> on <paramref name="quantizedActivations"/>.
    /// </summary>
    internal static T Requantized<T>(this T parameters, QuantizerOptions weights, QuantizerOptions? activations, RecurrentActivations? quantizedActivations)
        where T : SequenceClassifierModelParameters
    {
        var parts = parameters.UseClassifier(c => TrainedModelParts.OwnedBy(c.WithQuantization(weights, activations, quantizedActivations), TrainedModelParts.Of));
        return TrainedModelParts.OwnedBy(parts, p => (T)parameters.WithParts(p));
    }
}
