using static TorchSharp.torch;

namespace Microsoft.ML.Quantized;

/// <summary>
/// What <see cref="RobustnessReportBuilder"/> needs to know about a kind of model, so the same report serves language
/// models and classifiers: how to re-quantize it, how to score it, and where its weights and recurrent layers are.
/// </summary>
/// <param name="TrainedQuantizer">The model's own weight quantizer.</param>
/// <param name="TrainedActivations">The model's own activation quantizer.</param>
/// <param name="Requantize">
/// A new model with the same float weights, another weight quantizer and, unless null, another activation quantizer and
/// other activations it quantizes (disposed after scoring).
/// </param>
/// <param name="Metric">The score of a model on the evaluation data.</param>
/// <param name="MetricName">The score's name, e.g. <c>perplexity</c> or <c>accuracy</c>.</param>
/// <param name="LowerIsBetter">True for losses and perplexities, false for accuracies.</param>
/// <param name="Matrices">
/// A model's weight matrices with their quantizers, in the same order for every copy of the model: the recurrent ones
/// first (as <see cref="QuantizedRecurrentStack.QuantizedWeights"/> yields them), then the rest.
/// </param>
/// <param name="RecurrentLayers">A model's recurrent layers, for gate statistics and gate blocks.</param>
internal sealed record RobustnessReportSubject<TModel>(
    QuantizerOptions TrainedQuantizer,
    QuantizerOptions TrainedActivations,
    Func<TModel, QuantizerOptions, QuantizerOptions?, RecurrentActivations?, TModel> Requantize,
    Func<TModel, double> Metric,
    string MetricName,
    bool LowerIsBetter,
    Func<TModel, IEnumerable<(string Name, Tensor Weight, Quantizer Quantizer)>> Matrices,
    Func<TModel, IReadOnlyList<QuantizedRecurrentCell>> RecurrentLayers)
    where TModel : IDisposable;
