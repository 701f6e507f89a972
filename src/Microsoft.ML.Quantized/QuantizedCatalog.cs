using Microsoft.ML.Data;

namespace Microsoft.ML.Quantized;

/// <summary>
/// Entry points of Microsoft.ML.Quantized on ML.NET's catalogs: <c>mlContext.Transforms.QuantizedLstm(...)</c> and
/// <c>mlContext.Transforms.QuantizedGru(...)</c>; sequence classifiers on <c>mlContext.BinaryClassification.Trainers</c> and <c>mlContext.MulticlassClassification.Trainers</c>.
/// </summary>
public static class QuantizedCatalog
{
    /// <summary>
    /// Trains a quantized LSTM language model on a token-key column (<c>TokenizeIntoWords</c> then <c>MapValueToKey</c>,
    /// or <c>TokenizeIntoCharactersAsKeys</c>). The fitted transformer adds <paramref name="outputColumnName"/>, the
    /// final hidden state (a float vector of the hidden size) and <c>{outputColumnName}Perplexity</c>, a per-row
    /// perplexity usable as an anomaly score.
    /// </summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="outputColumnName">The feature column to add.</param>
    /// <param name="inputColumnName">The token-key column; null uses <paramref name="outputColumnName"/>.</param>
    /// <param name="options">Network, training and ML.NET options; the cell is set to LSTM (the object is copied, not changed).</param>
    public static QuantizedRecurrentLanguageModelEstimator QuantizedLstm(this TransformsCatalog catalog, string outputColumnName,
        string? inputColumnName, QuantizedRecurrentLanguageModelOptions options)
        => new(CatalogUtils.GetEnvironment(catalog), outputColumnName, inputColumnName, options, RecurrentCellKind.Lstm);

    /// <summary>
    /// Trains a quantized LSTM language model on a token-key column with the common settings as arguments; see
    /// <see cref="QuantizedLstm(TransformsCatalog, string, string?, QuantizedRecurrentLanguageModelOptions)"/>.
    /// </summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="outputColumnName">The feature column to add.</param>
    /// <param name="inputColumnName">The token-key column; null uses <paramref name="outputColumnName"/>.</param>
    /// <param name="hiddenSize">Hidden units per layer (the feature width). Default 128.</param>
    /// <param name="layers">Stacked layers. Default 1.</param>
    /// <param name="weightQuantizer">Weight quantizer; <see cref="QuantizerKind.None"/> trains float weights. Default ternary (TWN, Li et al. 2016); quantized weights get weight normalization (Hou et al. 2019).</param>
    /// <param name="bits">Bits per weight; 0 (default) takes the quantizer's own width.</param>
    /// <param name="epochs">Passes over the data. Default 6; the other training settings are <see cref="TrainingOptions"/>'s defaults.</param>
    public static QuantizedRecurrentLanguageModelEstimator QuantizedLstm(this TransformsCatalog catalog, string outputColumnName,
        string? inputColumnName = null, int hiddenSize = 128, int layers = 1, QuantizerKind weightQuantizer = QuantizerKind.TernaryWeightNet,
        int bits = 0, int epochs = 6)
        => catalog.QuantizedLstm(outputColumnName, inputColumnName, SimpleOptions(hiddenSize, layers, weightQuantizer, bits, epochs));

    /// <summary>
    /// Trains a quantized GRU language model on a token-key column; the fitted transformer adds the final hidden state
    /// and a per-row perplexity. See <see cref="QuantizedLstm(TransformsCatalog, string, string?, QuantizedRecurrentLanguageModelOptions)"/>.
    /// </summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="outputColumnName">The feature column to add.</param>
    /// <param name="inputColumnName">The token-key column; null uses <paramref name="outputColumnName"/>.</param>
    /// <param name="options">Network, training and ML.NET options; the cell is set to GRU (the object is copied, not changed).</param>
    public static QuantizedRecurrentLanguageModelEstimator QuantizedGru(this TransformsCatalog catalog, string outputColumnName,
        string? inputColumnName, QuantizedRecurrentLanguageModelOptions options)
        => new(CatalogUtils.GetEnvironment(catalog), outputColumnName, inputColumnName, options, RecurrentCellKind.Gru);

    /// <summary>
    /// Trains a quantized GRU language model on a token-key column with the common settings as arguments; see
    /// <see cref="QuantizedGru(TransformsCatalog, string, string?, QuantizedRecurrentLanguageModelOptions)"/>.
    /// </summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="outputColumnName">The feature column to add.</param>
    /// <param name="inputColumnName">The token-key column; null uses <paramref name="outputColumnName"/>.</param>
    /// <param name="hiddenSize">Hidden units per layer (the feature width). Default 128.</param>
    /// <param name="layers">Stacked layers. Default 1.</param>
    /// <param name="weightQuantizer">Weight quantizer; <see cref="QuantizerKind.None"/> trains float weights. Default ternary (TWN, Li et al. 2016); quantized weights get weight normalization (Hou et al. 2019).</param>
    /// <param name="bits">Bits per weight; 0 (default) takes the quantizer's own width.</param>
    /// <param name="epochs">Passes over the data. Default 6; the other training settings are <see cref="TrainingOptions"/>'s defaults.</param>
    public static QuantizedRecurrentLanguageModelEstimator QuantizedGru(this TransformsCatalog catalog, string outputColumnName,
        string? inputColumnName = null, int hiddenSize = 128, int layers = 1, QuantizerKind weightQuantizer = QuantizerKind.TernaryWeightNet,
        int bits = 0, int epochs = 6)
        => catalog.QuantizedGru(outputColumnName, inputColumnName, SimpleOptions(hiddenSize, layers, weightQuantizer, bits, epochs));

    private static QuantizedRecurrentLanguageModelOptions SimpleOptions(int hiddenSize, int layers, QuantizerKind weightQuantizer, int bits, int epochs)
    {
        var options = new QuantizedRecurrentLanguageModelOptions();
        options.Model.Recurrent.HiddenSize = hiddenSize;
        options.Model.Recurrent.Layers = layers;
        options.Model.Recurrent.WeightQuantizer = new QuantizerOptions { Kind = weightQuantizer, Bits = bits };
        // Quantized weights train well with in-cell normalization (Hou et al. 2019); weight norm keeps the fused kernel.
        if (weightQuantizer != QuantizerKind.None) options.Model.Recurrent.Normalization = RecurrentNormalization.Weight;
        options.Training.Epochs = epochs;
        return options;
    }

    // ---- Sequence classifiers: mlContext.BinaryClassification.Trainers / mlContext.MulticlassClassification.Trainers ----

    /// <summary>
    /// Trains a quantized LSTM binary sequence classifier: a <see cref="bool"/> label and a features column of token keys
    /// (<c>TokenizeIntoWords</c> then <c>MapValueToKey</c>) or float frames of <see cref="SequenceClassifierTrainerOptions.FrameSize"/>.
    /// Adds <c>Score</c>, <c>Probability</c> and <c>PredictedLabel</c> like ML.NET's binary trainers.
    /// </summary>
    /// <param name="catalog">The binary classification trainers catalog.</param>
    /// <param name="options">Columns, network, training and ML.NET options; the cell is set to LSTM (the object is copied, not changed).</param>
    public static QuantizedSequenceBinaryTrainer QuantizedLstm(this BinaryClassificationCatalog.BinaryClassificationTrainers catalog,
        SequenceClassifierTrainerOptions options)
        => new(CatalogUtils.GetEnvironment(catalog), options, RecurrentCellKind.Lstm);

    /// <summary>
    /// Trains a quantized LSTM binary sequence classifier with the common settings as arguments; see
    /// <see cref="QuantizedLstm(BinaryClassificationCatalog.BinaryClassificationTrainers, SequenceClassifierTrainerOptions)"/>.
    /// </summary>
    /// <param name="catalog">The binary classification trainers catalog.</param>
    /// <param name="labelColumnName">The <see cref="bool"/> label column. Default "Label".</param>
    /// <param name="featureColumnName">The features column: token keys or floats. Default "Features".</param>
    /// <param name="frameSize">Float features: values per time step. Default 1.</param>
    /// <param name="hiddenSize">Hidden units per layer. Default 128.</param>
    /// <param name="layers">Stacked layers. Default 1.</param>
    /// <param name="weightQuantizer">Weight quantizer; <see cref="QuantizerKind.None"/> trains float weights. Default ternary (TWN); quantized weights get weight normalization.</param>
    /// <param name="bits">Bits per weight; 0 (default) takes the quantizer's own width.</param>
    /// <param name="epochs">Passes over the data. Default 10; the other settings are <see cref="QuantizedSequenceClassifier.DefaultTrainingOptions"/>.</param>
    public static QuantizedSequenceBinaryTrainer QuantizedLstm(this BinaryClassificationCatalog.BinaryClassificationTrainers catalog,
        string labelColumnName = "Label", string featureColumnName = "Features", int frameSize = 1, int hiddenSize = 128, int layers = 1,
        QuantizerKind weightQuantizer = QuantizerKind.TernaryWeightNet, int bits = 0, int epochs = 10)
        => catalog.QuantizedLstm(ClassifierOptions(labelColumnName, featureColumnName, frameSize, hiddenSize, layers, weightQuantizer, bits, epochs));

    /// <summary>
    /// Trains a quantized GRU binary sequence classifier; see
    /// <see cref="QuantizedLstm(BinaryClassificationCatalog.BinaryClassificationTrainers, SequenceClassifierTrainerOptions)"/>.
    /// </summary>
    /// <param name="catalog">The binary classification trainers catalog.</param>
    /// <param name="options">Columns, network, training and ML.NET options; the cell is set to GRU (the object is copied, not changed).</param>
    public static QuantizedSequenceBinaryTrainer QuantizedGru(this BinaryClassificationCatalog.BinaryClassificationTrainers catalog,
        SequenceClassifierTrainerOptions options)
        => new(CatalogUtils.GetEnvironment(catalog), options, RecurrentCellKind.Gru);

    /// <summary>
    /// Trains a quantized GRU binary sequence classifier with the common settings as arguments; see
    /// <see cref="QuantizedGru(BinaryClassificationCatalog.BinaryClassificationTrainers, SequenceClassifierTrainerOptions)"/>.
    /// </summary>
    /// <param name="catalog">The binary classification trainers catalog.</param>
    /// <param name="labelColumnName">The <see cref="bool"/> label column. Default "Label".</param>
    /// <param name="featureColumnName">The features column: token keys or floats. Default "Features".</param>
    /// <param name="frameSize">Float features: values per time step. Default 1.</param>
    /// <param name="hiddenSize">Hidden units per layer. Default 128.</param>
    /// <param name="layers">Stacked layers. Default 1.</param>
    /// <param name="weightQuantizer">Weight quantizer; <see cref="QuantizerKind.None"/> trains float weights. Default ternary (TWN); quantized weights get weight normalization.</param>
    /// <param name="bits">Bits per weight; 0 (default) takes the quantizer's own width.</param>
    /// <param name="epochs">Passes over the data. Default 10; the other settings are <see cref="QuantizedSequenceClassifier.DefaultTrainingOptions"/>.</param>
    public static QuantizedSequenceBinaryTrainer QuantizedGru(this BinaryClassificationCatalog.BinaryClassificationTrainers catalog,
        string labelColumnName = "Label", string featureColumnName = "Features", int frameSize = 1, int hiddenSize = 128, int layers = 1,
        QuantizerKind weightQuantizer = QuantizerKind.TernaryWeightNet, int bits = 0, int epochs = 10)
        => catalog.QuantizedGru(ClassifierOptions(labelColumnName, featureColumnName, frameSize, hiddenSize, layers, weightQuantizer, bits, epochs));

    /// <summary>
    /// Trains a quantized LSTM multiclass sequence classifier: a key label (<c>MapValueToKey</c>; its key count is the
    /// number of classes) and a features column of token keys or float frames of <see cref="SequenceClassifierTrainerOptions.FrameSize"/>.
    /// Adds <c>Score</c> (class probabilities) and <c>PredictedLabel</c> (a key of the label's type) like ML.NET's multiclass trainers.
    /// </summary>
    /// <param name="catalog">The multiclass classification trainers catalog.</param>
    /// <param name="options">Columns, network, training and ML.NET options; the cell is set to LSTM (the object is copied, not changed).</param>
    public static QuantizedSequenceMulticlassTrainer QuantizedLstm(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog,
        SequenceClassifierTrainerOptions options)
        => new(CatalogUtils.GetEnvironment(catalog), options, RecurrentCellKind.Lstm);

    /// <summary>
    /// Trains a quantized LSTM multiclass sequence classifier with the common settings as arguments; see
    /// <see cref="QuantizedLstm(MulticlassClassificationCatalog.MulticlassClassificationTrainers, SequenceClassifierTrainerOptions)"/>.
    /// </summary>
    /// <param name="catalog">The multiclass classification trainers catalog.</param>
    /// <param name="labelColumnName">The key label column. Default "Label".</param>
    /// <param name="featureColumnName">The features column: token keys or floats. Default "Features".</param>
    /// <param name="frameSize">Float features: values per time step. Default 1.</param>
    /// <param name="hiddenSize">Hidden units per layer. Default 128.</param>
    /// <param name="layers">Stacked layers. Default 1.</param>
    /// <param name="weightQuantizer">Weight quantizer; <see cref="QuantizerKind.None"/> trains float weights. Default ternary (TWN); quantized weights get weight normalization.</param>
    /// <param name="bits">Bits per weight; 0 (default) takes the quantizer's own width.</param>
    /// <param name="epochs">Passes over the data. Default 10; the other settings are <see cref="QuantizedSequenceClassifier.DefaultTrainingOptions"/>.</param>
    public static QuantizedSequenceMulticlassTrainer QuantizedLstm(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog,
        string labelColumnName = "Label", string featureColumnName = "Features", int frameSize = 1, int hiddenSize = 128, int layers = 1,
        QuantizerKind weightQuantizer = QuantizerKind.TernaryWeightNet, int bits = 0, int epochs = 10)
        => catalog.QuantizedLstm(ClassifierOptions(labelColumnName, featureColumnName, frameSize, hiddenSize, layers, weightQuantizer, bits, epochs));

    /// <summary>
    /// Trains a quantized GRU multiclass sequence classifier; see
    /// <see cref="QuantizedLstm(MulticlassClassificationCatalog.MulticlassClassificationTrainers, SequenceClassifierTrainerOptions)"/>.
    /// </summary>
    /// <param name="catalog">The multiclass classification trainers catalog.</param>
    /// <param name="options">Columns, network, training and ML.NET options; the cell is set to GRU (the object is copied, not changed).</param>
    public static QuantizedSequenceMulticlassTrainer QuantizedGru(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog,
        SequenceClassifierTrainerOptions options)
        => new(CatalogUtils.GetEnvironment(catalog), options, RecurrentCellKind.Gru);

    /// <summary>
    /// Trains a quantized GRU multiclass sequence classifier with the common settings as arguments; see
    /// <see cref="QuantizedGru(MulticlassClassificationCatalog.MulticlassClassificationTrainers, SequenceClassifierTrainerOptions)"/>.
    /// </summary>
    /// <param name="catalog">The multiclass classification trainers catalog.</param>
    /// <param name="labelColumnName">The key label column. Default "Label".</param>
    /// <param name="featureColumnName">The features column: token keys or floats. Default "Features".</param>
    /// <param name="frameSize">Float features: values per time step. Default 1.</param>
    /// <param name="hiddenSize">Hidden units per layer. Default 128.</param>
    /// <param name="layers">Stacked layers. Default 1.</param>
    /// <param name="weightQuantizer">Weight quantizer; <see cref="QuantizerKind.None"/> trains float weights. Default ternary (TWN); quantized weights get weight normalization.</param>
    /// <param name="bits">Bits per weight; 0 (default) takes the quantizer's own width.</param>
    /// <param name="epochs">Passes over the data. Default 10; the other settings are <see cref="QuantizedSequenceClassifier.DefaultTrainingOptions"/>.</param>
    public static QuantizedSequenceMulticlassTrainer QuantizedGru(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog,
        string labelColumnName = "Label", string featureColumnName = "Features", int frameSize = 1, int hiddenSize = 128, int layers = 1,
        QuantizerKind weightQuantizer = QuantizerKind.TernaryWeightNet, int bits = 0, int epochs = 10)
        => catalog.QuantizedGru(ClassifierOptions(labelColumnName, featureColumnName, frameSize, hiddenSize, layers, weightQuantizer, bits, epochs));

    private static SequenceClassifierTrainerOptions ClassifierOptions(string labelColumnName, string featureColumnName, int frameSize,
        int hiddenSize, int layers, QuantizerKind weightQuantizer, int bits, int epochs)
    {
        var options = new SequenceClassifierTrainerOptions { LabelColumnName = labelColumnName, FeatureColumnName = featureColumnName, FrameSize = frameSize };
        options.Model.Recurrent.HiddenSize = hiddenSize;
        options.Model.Recurrent.Layers = layers;
        options.Model.Recurrent.WeightQuantizer = new QuantizerOptions { Kind = weightQuantizer, Bits = bits };
        if (weightQuantizer != QuantizerKind.None) options.Model.Recurrent.Normalization = RecurrentNormalization.Weight;
        options.Training.Epochs = epochs;
        return options;
    }
}
