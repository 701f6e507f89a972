namespace Microsoft.ML.Quantized;

/// <summary>
/// Turns a trained torch model into the parts the ML.NET components of the scoring runtime hold: the packed model
/// (<see cref="QuantizedLanguageModel.Pack"/>, <see cref="QuantizedSequenceClassifier.Pack"/>) and the torch model
/// itself as their training weights. The
/// runtime also calls the two <c>FromTrainingFile</c> methods, by name (<c>TrainingPackage</c>), to pack models saved
/// before packed models existed.
/// </summary>
internal static class TrainedModelParts
{
    /// <summary>The parts of a freshly trained (or fine-tuned, or re-quantized) language model, which they then own.</summary>
    public static LanguageModelParts Of(QuantizedLanguageModel model) => new(model.Pack(), model);

    /// <summary>The parts of a freshly trained (or fine-tuned, or re-quantized) classifier, which they then own.</summary>
    public static SequenceClassifierParts Of(QuantizedSequenceClassifier classifier) => new(classifier.Pack(), classifier);

    /// <summary>Packs a language model from its core model file (the only model stream of the first two ML.NET formats).</summary>
    internal static LanguageModelParts LanguageModelFromTrainingFile(byte[] file) =>
        OwnedBy(QuantizedLanguageModel.Load(new MemoryStream(file, writable: false)), Of);

    /// <summary>Packs a classifier from its core model file (the only model stream of the first two ML.NET formats).</summary>
    internal static SequenceClassifierParts SequenceClassifierFromTrainingFile(byte[] file) =>
        OwnedBy(QuantizedSequenceClassifier.Load(new MemoryStream(file, writable: false)), Of);

    /// <summary>Parts made by <paramref name="pack"/> from <paramref name="model"/>, which is disposed if packing fails.</summary>
    public static TParts OwnedBy<TModel, TParts>(TModel model, Func<TModel, TParts> pack)
        where TModel : IDisposable
    {
        try
        {
            return pack(model);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }
}
