using Microsoft.ML.Data;

namespace Microsoft.ML.Quantized;

/// <summary>
/// Entry points of Microsoft.ML.Quantized on ML.NET's catalogs: <c>mlContext.Transforms.QuantizedLstm(...)</c> and
/// <c>mlContext.Transforms.QuantizedGru(...)</c>; KURE fine-tuning, <c>mlContext.Transforms.KureFineTune(...)</c>, of either kind of model; sequence classifiers on <c>mlContext.BinaryClassification.Trainers</c> and <c>mlContext.MulticlassClassification.Trainers</c>;
/// quantization sweeps, <c>mlContext.Quantized().CreateExperiment()</c>.
/// </summary>
public static class QuantizedCatalog
{
    /// <summary>
    /// Quantization sweeps on this MLContext: <c>mlContext.Quantized().CreateExperiment()</c> gives a
    /// <see cref="Sweep.QuantizationExperiment"/> with the MLContext's seed, log and cancellation (the counterpart of
    /// AutoML's <c>mlContext.Auto().CreateExperiment()</c>).
    /// </summary>
    /// <param name="mlContext">The ML.NET context.</param>
    public static QuantizedSweepCatalog Quantized(this MLContext mlContext)
    {
        Microsoft.ML.Runtime.Contracts.CheckValue(mlContext, nameof(mlContext));
        return new QuantizedSweepCatalog(mlContext);
    }

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
        string? inputColumnName = null, int hiddenSize = EstimatorDefaults.HiddenSize, int layers = EstimatorDefaults.Layers, QuantizerKind weightQuantizer = EstimatorDefaults.WeightQuantizer,
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
        string? inputColumnName = null, int hiddenSize = EstimatorDefaults.HiddenSize, int layers = EstimatorDefaults.Layers, QuantizerKind weightQuantizer = EstimatorDefaults.WeightQuantizer,
        int bits = 0, int epochs = 6)
        => catalog.QuantizedGru(outputColumnName, inputColumnName, SimpleOptions(hiddenSize, layers, weightQuantizer, bits, epochs));

    /// <summary>
    /// KURE fine-tuning (Shkolnik et al. 2020) of a fitted quantized language model: the estimator's Fit reads the token-key
    /// column <paramref name="model"/> was trained on, fine-tunes a copy of it with the kurtosis term added to the loss and
    /// returns a new <see cref="QuantizedRecurrentLanguageModelTransformer"/> of the same kind and columns, whose weights
    /// hold up better under post-training quantization (<see cref="WithQuantization(QuantizedRecurrentLanguageModelTransformer, QuantizerOptions, QuantizerOptions?, RecurrentActivations?)"/>). <paramref name="model"/> is left as it is.
    /// </summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="model">The language model to fine-tune (from <c>QuantizedLstm</c> or <c>QuantizedGru</c>).</param>
    /// <param name="options">KURE term, epochs, learning rate, batch, seed, validation data and progress (the object is copied, not changed).</param>
    public static KureFineTuneEstimator KureFineTune(this TransformsCatalog catalog, QuantizedRecurrentLanguageModelTransformer model, KureFineTuneOptions options)
        => new(CatalogUtils.GetEnvironment(catalog), model, options);

    /// <summary>
    /// KURE fine-tuning with the paper's settings (Adam at 1e-3, target kurtosis 1.8, recurrent weights) and the weight of
    /// the term and the epochs as arguments; see <see cref="KureFineTune(TransformsCatalog, QuantizedRecurrentLanguageModelTransformer, KureFineTuneOptions)"/>.
    /// </summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="model">The language model to fine-tune.</param>
    /// <param name="lambda">Weight of the kurtosis term (<see cref="KureOptions.Lambda"/>). Default 0.01 (<see cref="KureOptions.DefaultLambda"/>).</param>
    /// <param name="epochs">Passes over the data. Default 1.</param>
    public static KureFineTuneEstimator KureFineTune(this TransformsCatalog catalog, QuantizedRecurrentLanguageModelTransformer model, double lambda = KureOptions.DefaultLambda, int epochs = 1)
        => catalog.KureFineTune(model, new KureFineTuneOptions { Kure = new KureOptions { Lambda = lambda }, Epochs = epochs });

    /// <summary>
    /// KURE fine-tuning of a language model given as an <see cref="ITransformer"/>: it must be a
    /// <see cref="QuantizedRecurrentLanguageModelTransformer"/>; any other kind is rejected with an error that says so
    /// (for a fitted pipeline, pass its <c>LastTransformer</c> and fit on the data as that transformer reads it; for a
    /// classifier, pass its typed prediction transformer to the classifier overloads).
    /// </summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="model">The language model to fine-tune.</param>
    /// <param name="options">KURE term, epochs, learning rate, batch, seed, validation data and progress.</param>
    public static KureFineTuneEstimator KureFineTune(this TransformsCatalog catalog, ITransformer model, KureFineTuneOptions options)
    {
        var env = CatalogUtils.GetEnvironment(catalog);
        Microsoft.ML.Runtime.Contracts.CheckValue(env, model, nameof(model));
        if (model is not QuantizedRecurrentLanguageModelTransformer languageModel)
            throw Microsoft.ML.Runtime.Contracts.ExceptParam(env, nameof(model), $"KureFineTune fine-tunes a {nameof(QuantizedRecurrentLanguageModelTransformer)} (fitted by QuantizedLstm or QuantizedGru); got a {model.GetType().Name}. " +
                "For a fitted pipeline (a TransformerChain), pass its LastTransformer and fit on the data with the token column; " +
                $"for a sequence classifier, pass its {nameof(BinaryPredictionTransformer<SequenceClassifierBinaryModelParameters>)} or {nameof(MulticlassPredictionTransformer<SequenceClassifierMulticlassModelParameters>)} (cast LastTransformer) to the classifier overloads.");
        return new KureFineTuneEstimator(env, languageModel, options);
    }

    /// <summary>
    /// KURE fine-tuning (Shkolnik et al. 2020) of a fitted binary quantized sequence classifier (from
    /// <c>mlContext.BinaryClassification.Trainers.QuantizedLstm</c> or <c>QuantizedGru</c>): the estimator's Fit reads the
    /// model's features column and the <see cref="bool"/> label <paramref name="labelColumnName"/>, fine-tunes a copy of the
    /// classifier with the kurtosis term added to the loss and returns a new prediction transformer of the same kind.
    /// <paramref name="model"/> is left as it is.
    /// </summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="model">The binary classifier to fine-tune.</param>
    /// <param name="options">KURE term, epochs, learning rate, batch, seed, validation data and progress (the object is copied, not changed).</param>
    /// <param name="labelColumnName">The <see cref="bool"/> label column of the fine-tuning data. Default "Label".</param>
    public static KureClassifierFineTuneEstimator<BinaryPredictionTransformer<SequenceClassifierBinaryModelParameters>, SequenceClassifierBinaryModelParameters> KureFineTune(
        this TransformsCatalog catalog, BinaryPredictionTransformer<SequenceClassifierBinaryModelParameters> model, KureFineTuneOptions options,
        string labelColumnName = "Label")
    {
        var env = CatalogUtils.GetEnvironment(catalog);
        Microsoft.ML.Runtime.Contracts.CheckValue(env, model, nameof(model));
        return new(env, model.Model, labelColumnName, options, (o, cell) => new QuantizedSequenceBinaryTrainer(env, o, cell));
    }

    /// <summary>
    /// KURE fine-tuning of a fitted binary sequence classifier with the paper's settings (Adam at 1e-3, target kurtosis 1.8,
    /// recurrent weights) and the weight of the term and the epochs as arguments; see
    /// <see cref="KureFineTune(TransformsCatalog, BinaryPredictionTransformer{SequenceClassifierBinaryModelParameters}, KureFineTuneOptions, string)"/>.
    /// </summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="model">The binary classifier to fine-tune.</param>
    /// <param name="labelColumnName">The <see cref="bool"/> label column. Default "Label".</param>
    /// <param name="lambda">Weight of the kurtosis term (<see cref="KureOptions.Lambda"/>). Default 0.01 (<see cref="KureOptions.DefaultLambda"/>).</param>
    /// <param name="epochs">Passes over the data. Default 1.</param>
    public static KureClassifierFineTuneEstimator<BinaryPredictionTransformer<SequenceClassifierBinaryModelParameters>, SequenceClassifierBinaryModelParameters> KureFineTune(
        this TransformsCatalog catalog, BinaryPredictionTransformer<SequenceClassifierBinaryModelParameters> model,
        string labelColumnName = "Label", double lambda = KureOptions.DefaultLambda, int epochs = 1)
        => catalog.KureFineTune(model, new KureFineTuneOptions { Kure = new KureOptions { Lambda = lambda }, Epochs = epochs }, labelColumnName);

    /// <summary>
    /// KURE fine-tuning (Shkolnik et al. 2020) of a fitted multiclass quantized sequence classifier (from
    /// <c>mlContext.MulticlassClassification.Trainers.QuantizedLstm</c> or <c>QuantizedGru</c>): the estimator's Fit reads the
    /// model's features column and the key label <paramref name="labelColumnName"/> (as many classes as the model has),
    /// fine-tunes a copy of the classifier with the kurtosis term added to the loss and returns a new prediction transformer
    /// of the same kind. <paramref name="model"/> is left as it is.
    /// </summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="model">The multiclass classifier to fine-tune.</param>
    /// <param name="options">KURE term, epochs, learning rate, batch, seed, validation data and progress (the object is copied, not changed).</param>
    /// <param name="labelColumnName">The key label column of the fine-tuning data. Default "Label".</param>
    public static KureClassifierFineTuneEstimator<MulticlassPredictionTransformer<SequenceClassifierMulticlassModelParameters>, SequenceClassifierMulticlassModelParameters> KureFineTune(
        this TransformsCatalog catalog, MulticlassPredictionTransformer<SequenceClassifierMulticlassModelParameters> model, KureFineTuneOptions options,
        string labelColumnName = "Label")
    {
        var env = CatalogUtils.GetEnvironment(catalog);
        Microsoft.ML.Runtime.Contracts.CheckValue(env, model, nameof(model));
        return new(env, model.Model, labelColumnName, options, (o, cell) => new QuantizedSequenceMulticlassTrainer(env, o, cell));
    }

    /// <summary>
    /// KURE fine-tuning of a fitted multiclass sequence classifier with the paper's settings and the weight of the term and
    /// the epochs as arguments; see
    /// <see cref="KureFineTune(TransformsCatalog, MulticlassPredictionTransformer{SequenceClassifierMulticlassModelParameters}, KureFineTuneOptions, string)"/>.
    /// </summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="model">The multiclass classifier to fine-tune.</param>
    /// <param name="labelColumnName">The key label column. Default "Label".</param>
    /// <param name="lambda">Weight of the kurtosis term (<see cref="KureOptions.Lambda"/>). Default 0.01 (<see cref="KureOptions.DefaultLambda"/>).</param>
    /// <param name="epochs">Passes over the data. Default 1.</param>
    public static KureClassifierFineTuneEstimator<MulticlassPredictionTransformer<SequenceClassifierMulticlassModelParameters>, SequenceClassifierMulticlassModelParameters> KureFineTune(
        this TransformsCatalog catalog, MulticlassPredictionTransformer<SequenceClassifierMulticlassModelParameters> model,
        string labelColumnName = "Label", double lambda = KureOptions.DefaultLambda, int epochs = 1)
        => catalog.KureFineTune(model, new KureFineTuneOptions { Kure = new KureOptions { Lambda = lambda }, Epochs = epochs }, labelColumnName);

    /// <summary>
    /// Post-training re-quantization of a fitted language model: a new transformer with the same columns, key map and
    /// float shadow weights whose weight quantizer is <paramref name="weights"/> (e.g. uniform 2-8 bits), without retraining
    /// (see <see cref="QuantizedLanguageModel.WithQuantization"/>). <paramref name="transformer"/> is left as it is; dispose the new one separately.
    /// </summary>
    /// <param name="transformer">The fitted language model.</param>
    /// <param name="weights">The new weight quantizer.</param>
    /// <param name="activations">The new activation quantizer (post-training activation quantization), or null (the default) to keep the trained one.</param>
    /// <param name="quantizedActivations">The activations the activation quantizer applies to, or null (the default) to keep the model's.</param>
    /// <exception cref="ArgumentException">
    /// <paramref name="weights"/> is not a valid weight quantizer, or <paramref name="activations"/> not a valid activation quantizer (the message names the option).
    /// </exception>
    public static QuantizedRecurrentLanguageModelTransformer WithQuantization(this QuantizedRecurrentLanguageModelTransformer transformer, QuantizerOptions weights,
        QuantizerOptions? activations = null, RecurrentActivations? quantizedActivations = null)
    {
        ArgumentNullException.ThrowIfNull(transformer);
        return transformer.WithModel(transformer.UseModel(m => m.WithQuantization(weights, activations, quantizedActivations)));
    }

    /// <summary>
    /// Post-training re-quantization of a fitted binary sequence classifier: a new prediction transformer with the same
    /// columns and float shadow weights whose recurrent (and quantized head) weights use <paramref name="weights"/>, without
    /// retraining (see <see cref="QuantizedSequenceClassifier.WithQuantization"/>). <paramref name="transformer"/> is left
    /// as it is; dispose the new model (<c>result.Model.Dispose()</c>) separately.
    /// </summary>
    /// <param name="transformer">The fitted classifier.</param>
    /// <param name="weights">The new weight quantizer.</param>
    /// <param name="activations">The new activation quantizer (post-training activation quantization), or null (the default) to keep the trained one.</param>
    /// <param name="quantizedActivations">The activations the activation quantizer applies to, or null (the default) to keep the model's.</param>
    /// <exception cref="ArgumentException">
    /// <paramref name="weights"/> is not a valid weight quantizer, or <paramref name="activations"/> not a valid activation quantizer (the message names the option).
    /// </exception>
    public static BinaryPredictionTransformer<SequenceClassifierBinaryModelParameters> WithQuantization(
        this BinaryPredictionTransformer<SequenceClassifierBinaryModelParameters> transformer, QuantizerOptions weights, QuantizerOptions? activations = null,
        RecurrentActivations? quantizedActivations = null)
    {
        ArgumentNullException.ThrowIfNull(transformer);
        var model = transformer.Model.Requantized(weights, activations, quantizedActivations);
        return new(model.Env, model, transformer.TrainSchema, transformer.FeatureColumnName);
    }

    /// <summary>The multiclass counterpart of <see cref="WithQuantization(BinaryPredictionTransformer{SequenceClassifierBinaryModelParameters}, QuantizerOptions, QuantizerOptions?, RecurrentActivations?)"/>.</summary>
    /// <param name="transformer">The fitted classifier.</param>
    /// <param name="weights">The new weight quantizer.</param>
    /// <param name="activations">The new activation quantizer (post-training activation quantization), or null (the default) to keep the trained one.</param>
    /// <param name="quantizedActivations">The activations the activation quantizer applies to, or null (the default) to keep the model's.</param>
    /// <exception cref="ArgumentException">
    /// <paramref name="weights"/> is not a valid weight quantizer, or <paramref name="activations"/> not a valid activation quantizer (the message names the option).
    /// </exception>
    public static MulticlassPredictionTransformer<SequenceClassifierMulticlassModelParameters> WithQuantization(
        this MulticlassPredictionTransformer<SequenceClassifierMulticlassModelParameters> transformer, QuantizerOptions weights, QuantizerOptions? activations = null,
        RecurrentActivations? quantizedActivations = null)
    {
        ArgumentNullException.ThrowIfNull(transformer);
        var model = transformer.Model.Requantized(weights, activations, quantizedActivations);
        return new(model.Env, model, transformer.TrainSchema, transformer.FeatureColumnName, transformer._trainLabelColumn);
    }

    /// <summary>
    /// How a fitted language model holds up under post-training quantization (KURE's robustness table): perplexity at float,
    /// as trained, at each uniform bit width and under perturbed step sizes, with weight and gate kurtosis. The token
    /// column of <paramref name="data"/> is read as training reads it (one stream, <c>&lt;eos&gt;</c> before each row, state
    /// carried), so the perplexities are stream perplexities, not the per-row mean of the perplexity column.
    /// </summary>
    /// <param name="transformer">The fitted language model.</param>
    /// <param name="data">Evaluation data holding the model's token-key column.</param>
    /// <param name="builder">Bit widths, step-size multipliers and other settings; null uses <see cref="RobustnessReportBuilder"/>'s defaults.</param>
    public static RobustnessReport RobustnessReport(this QuantizedRecurrentLanguageModelTransformer transformer, IDataView data, RobustnessReportBuilder? builder = null)
    {
        ArgumentNullException.ThrowIfNull(transformer);
        var tokens = TokenIdStream.Read(transformer.HostForErrors, transformer, data, "evaluation data");
        return transformer.UseModel(m => (builder ?? new RobustnessReportBuilder()).Build(m, tokens));
    }

    private static QuantizedRecurrentLanguageModelOptions SimpleOptions(int hiddenSize, int layers, QuantizerKind weightQuantizer, int bits, int epochs)
    {
        var options = new QuantizedRecurrentLanguageModelOptions();
        EstimatorDefaults.With(options.Model.Recurrent, hiddenSize, layers, weightQuantizer, bits);
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
        string labelColumnName = "Label", string featureColumnName = "Features", int frameSize = 1, int hiddenSize = EstimatorDefaults.HiddenSize, int layers = EstimatorDefaults.Layers,
        QuantizerKind weightQuantizer = EstimatorDefaults.WeightQuantizer, int bits = 0, int epochs = 10)
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
        string labelColumnName = "Label", string featureColumnName = "Features", int frameSize = 1, int hiddenSize = EstimatorDefaults.HiddenSize, int layers = EstimatorDefaults.Layers,
        QuantizerKind weightQuantizer = EstimatorDefaults.WeightQuantizer, int bits = 0, int epochs = 10)
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
        string labelColumnName = "Label", string featureColumnName = "Features", int frameSize = 1, int hiddenSize = EstimatorDefaults.HiddenSize, int layers = EstimatorDefaults.Layers,
        QuantizerKind weightQuantizer = EstimatorDefaults.WeightQuantizer, int bits = 0, int epochs = 10)
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
        string labelColumnName = "Label", string featureColumnName = "Features", int frameSize = 1, int hiddenSize = EstimatorDefaults.HiddenSize, int layers = EstimatorDefaults.Layers,
        QuantizerKind weightQuantizer = EstimatorDefaults.WeightQuantizer, int bits = 0, int epochs = 10)
        => catalog.QuantizedGru(ClassifierOptions(labelColumnName, featureColumnName, frameSize, hiddenSize, layers, weightQuantizer, bits, epochs));

    private static SequenceClassifierTrainerOptions ClassifierOptions(string labelColumnName, string featureColumnName, int frameSize,
        int hiddenSize, int layers, QuantizerKind weightQuantizer, int bits, int epochs)
    {
        var options = new SequenceClassifierTrainerOptions { LabelColumnName = labelColumnName, FeatureColumnName = featureColumnName, FrameSize = frameSize };
        EstimatorDefaults.With(options.Model.Recurrent, hiddenSize, layers, weightQuantizer, bits);
        options.Training.Epochs = epochs;
        return options;
    }
}
