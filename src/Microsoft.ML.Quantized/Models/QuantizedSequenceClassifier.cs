using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized;

/// <summary>
/// A trained quantized recurrent sequence classifier over token ids or float frames: predict one sequence or a
/// batch, evaluate accuracy, log-loss and (binary) AUC, report its packed size, save and load. Holds its own
/// torch state; dispose it.
/// </summary>
/// <remarks>See <see cref="SequenceClassifierOptions"/> for the network and how inputs are read.</remarks>
public sealed class QuantizedSequenceClassifier : IDisposable, ITrainingWeights
{
    private const string Kind = "sequence-classifier";
    private static JsonSerializerOptions Json => ModelFile.HeaderJson;
    private readonly SequenceClassifierOptions _options;
    private readonly Device _device;

    private QuantizedSequenceClassifier(SequenceClassifierNetwork network, SequenceClassifierOptions options, IReadOnlyList<EpochSummary> history, Device device)
    {
        Network = network;
        _options = options;
        History = history;
        _device = device;
    }

    /// <summary>A copy of the model's options (for token models, <see cref="SequenceClassifierOptions.VocabularySize"/> is the size used).</summary>
    public SequenceClassifierOptions Options => _options.Clone();

    /// <summary>Whether the model reads token ids or float frames.</summary>
    public SequenceClassifierInputKind InputKind => Network.InputKind;

    /// <summary>Number of classes.</summary>
    public int ClassCount => Network.ClassCount;

    /// <summary>Training history, one entry per epoch run (units are examples).</summary>
    public IReadOnlyList<EpochSummary> History { get; }

    /// <summary>
    /// True when the recurrent stack runs libtorch's fused kernel: weight-only quantization with no or weight normalization and
    /// slopes of 1, except a GRU on a CPU with 512-bit vectors, whose hand-written loop is the faster there.
    /// </summary>
    public bool UsesFusedKernel => Network.Recurrent.UsesFusedKernel;

    internal SequenceClassifierNetwork Network { get; }

    /// <summary>
    /// Training options suited to classification, used when <c>Train</c> gets none: Adam, learning rate 2e-3,
    /// batch 32, 10 epochs, gradient clipping 1.0, learning rate halved on a validation plateau, seed 1.
    /// </summary>
    public static TrainingOptions DefaultTrainingOptions() => new()
    {
        Epochs = 10, BatchSize = 32, Optimizer = OptimizerKind.Adam, LearningRate = 2e-3,
        LearningRateDecay = 2, GradientClipNorm = 1.0, Seed = 1,
    };

    /// <summary>
    /// Trains a classifier on token sequences (ids in [0, <see cref="SequenceClassifierOptions.VocabularySize"/>),
    /// labels in [0, <see cref="SequenceClassifierOptions.ClassCount"/>)), validating after each epoch on the
    /// validation set when one is given. <paramref name="training"/> null = <see cref="DefaultTrainingOptions"/>;
    /// its <see cref="TrainingOptions.SequenceLength"/> is not used (whole sequences are read).
    /// </summary>
    /// <exception cref="ArgumentException">An empty sequence, a token outside the vocabulary, a label outside the classes, or sequence and label counts that differ (the message names the example).</exception>
    public static QuantizedSequenceClassifier Train(IReadOnlyList<int[]> trainingSequences, int[] trainingLabels,
        IReadOnlyList<int[]>? validationSequences = null, int[]? validationLabels = null,
        SequenceClassifierOptions? options = null, TrainingOptions? training = null,
        IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(trainingSequences);
        ArgumentNullException.ThrowIfNull(trainingLabels);
        options = options?.Clone() ?? new SequenceClassifierOptions();
        OptionsValidator.Validate(options);
        CheckValidationPair(validationSequences, validationLabels);
        var train = SequenceClassifierData.FromTokens(trainingSequences, trainingLabels, options.VocabularySize, options.ClassCount, nameof(trainingSequences), nameof(trainingLabels));
        var validation = validationSequences is null ? null
            : SequenceClassifierData.FromTokens(validationSequences, validationLabels, options.VocabularySize, options.ClassCount, nameof(validationSequences), nameof(validationLabels));
        if (options.VocabularySize == 0) options.VocabularySize = Math.Max(train.TokenBound, validation?.TokenBound ?? 0);
        return Train(SequenceClassifierInputKind.Tokens, options.VocabularySize, train, validation, options, training, progress, cancellationToken);
    }

    /// <summary>
    /// Trains a classifier on float sequences, each read as frames of <see cref="SequenceClassifierOptions.FrameSize"/>
    /// values (one frame per step), validating after each epoch on the validation set when one is given.
    /// <paramref name="training"/> null = <see cref="DefaultTrainingOptions"/>.
    /// </summary>
    /// <exception cref="ArgumentException">An empty sequence, a length that is not a multiple of the frame size, NaN or infinity, a label outside the classes, or counts that differ (the message names the example and position).</exception>
    public static QuantizedSequenceClassifier Train(IReadOnlyList<float[]> trainingSequences, int[] trainingLabels,
        IReadOnlyList<float[]>? validationSequences = null, int[]? validationLabels = null,
        SequenceClassifierOptions? options = null, TrainingOptions? training = null,
        IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(trainingSequences);
        ArgumentNullException.ThrowIfNull(trainingLabels);
        options = options?.Clone() ?? new SequenceClassifierOptions();
        OptionsValidator.Validate(options);
        CheckValidationPair(validationSequences, validationLabels);
        var train = SequenceClassifierData.FromFrames(trainingSequences, trainingLabels, options.FrameSize, options.ClassCount, nameof(trainingSequences), nameof(trainingLabels));
        var validation = validationSequences is null ? null
            : SequenceClassifierData.FromFrames(validationSequences, validationLabels, options.FrameSize, options.ClassCount, nameof(validationSequences), nameof(validationLabels));
        return Train(SequenceClassifierInputKind.Frames, options.FrameSize, train, validation, options, training, progress, cancellationToken);
    }

    /// <summary>Trains on checked data; <paramref name="options"/> is already validated (token models: with their vocabulary size).</summary>
    internal static QuantizedSequenceClassifier Train(SequenceClassifierInputKind kind, int inputSize, SequenceClassifierData train, SequenceClassifierData? validation,
        SequenceClassifierOptions options, TrainingOptions? training, IProgress<TrainingProgress>? progress, CancellationToken cancellationToken)
    {
        training = training?.Clone() ?? DefaultTrainingOptions();
        OptionsValidator.Validate(training);
        if (train.Count == 0) throw new ArgumentException("trainingSequences is empty; training needs at least one labelled example.", "trainingSequences");
        RecurrentBatchNorm.KeepTrainedStatisticSets(options.Recurrent, train.LongestSequence);
        using var random = TrainingRandom.Use(training.Seed);
        var network = new SequenceClassifierNetwork(kind, inputSize, options);
        var fingerprint = JsonSerializer.Serialize(new { kind, options, examples = train.Count, training.Seed, training.BatchSize, training.Optimizer, training.LearningRate }, Json);
        return Run(network, options, train, validation, training, fingerprint, Array.Empty<EpochSummary>(), progress, cancellationToken);
    }

    /// <summary>
    /// KURE fine-tuning (Shkolnik et al. 2020) on labelled token sequences: continues training a copy of this model with the
    /// kurtosis term <paramref name="kure"/> added to the loss and returns a new classifier of the same configuration (this
    /// one is left as it is), whose weights hold up better under post-training quantization. <paramref name="training"/>
    /// sets the run (the paper fine-tunes with Adam at 1e-3); <paramref name="kure"/> replaces its
    /// <see cref="TrainingOptions.Kure"/>. The new model's history is this model's followed by the fine-tuning epochs.
    /// </summary>
    /// <exception cref="ArgumentException">Bad options (the message names the option), or an empty sequence, a token outside the vocabulary, a label outside the classes, or counts that differ (the message names the example).</exception>
    /// <exception cref="InvalidOperationException">This classifier reads float frames, not token ids.</exception>
    public QuantizedSequenceClassifier FineTuneWithKure(IReadOnlyList<int[]> trainingSequences, int[] trainingLabels,
        IReadOnlyList<int[]>? validationSequences, int[]? validationLabels, KureOptions kure, TrainingOptions training,
        IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(trainingLabels);
        CheckValidationPair(validationSequences, validationLabels);
        var train = TokenData(trainingSequences, trainingLabels, nameof(trainingSequences));
        var validation = validationSequences is null ? null : TokenData(validationSequences, validationLabels, nameof(validationSequences));
        return FineTuneWithKure(train, validation, kure, training, progress, cancellationToken);
    }

    /// <summary>
    /// KURE fine-tuning on labelled float sequences (frames of <see cref="SequenceClassifierOptions.FrameSize"/> values); see
    /// the token-sequence overload.
    /// </summary>
    /// <exception cref="ArgumentException">Bad options (the message names the option), or an empty sequence, a length that is not a multiple of the frame size, NaN or infinity, a label outside the classes, or counts that differ.</exception>
    /// <exception cref="InvalidOperationException">This classifier reads token ids, not float frames.</exception>
    public QuantizedSequenceClassifier FineTuneWithKure(IReadOnlyList<float[]> trainingSequences, int[] trainingLabels,
        IReadOnlyList<float[]>? validationSequences, int[]? validationLabels, KureOptions kure, TrainingOptions training,
        IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(trainingLabels);
        CheckValidationPair(validationSequences, validationLabels);
        var train = FrameData(trainingSequences, trainingLabels, nameof(trainingSequences));
        var validation = validationSequences is null ? null : FrameData(validationSequences, validationLabels, nameof(validationSequences));
        return FineTuneWithKure(train, validation, kure, training, progress, cancellationToken);
    }

    private QuantizedSequenceClassifier FineTuneWithKure(SequenceClassifierData train, SequenceClassifierData? validation, KureOptions kure, TrainingOptions training,
        IProgress<TrainingProgress>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(kure);
        ArgumentNullException.ThrowIfNull(training);
        training = training.Clone();
        training.Kure = kure.Clone();
        OptionsValidator.Validate(training);
        if (train.Count == 0) throw new ArgumentException("trainingSequences is empty; fine-tuning needs at least one labelled example.", "trainingSequences");
        using var random = TrainingRandom.Use(training.Seed);
        var network = Requantization.Copy(Network, _options, _options, _device);
        var fingerprint = "kure-fine-tune " + JsonSerializer.Serialize(new { kind = InputKind, options = _options, examples = train.Count, training.Seed, training.BatchSize, training.Optimizer, training.LearningRate }, Json);
        return Run(network, _options, train, validation, training, fingerprint, History, progress, cancellationToken);
    }

    /// <summary>
    /// Trains <paramref name="network"/> (owned from here: disposed if training fails) with <paramref name="training"/>, the
    /// kurtosis term added when <see cref="TrainingOptions.Kure"/> is set; the new model's history is <paramref name="before"/>
    /// followed by the epochs run.
    /// </summary>
    private static QuantizedSequenceClassifier Run(SequenceClassifierNetwork network, SequenceClassifierOptions options, SequenceClassifierData train,
        SequenceClassifierData? validation, TrainingOptions training, string fingerprint, IReadOnlyList<EpochSummary> before,
        IProgress<TrainingProgress>? progress, CancellationToken cancellationToken)
    {
        try
        {
            var device = DeviceResolver.Resolve(training.Device);
            network.to(device);
            var task = new SequenceClassifierTask(network, train, validation, training.BatchSize, training.Seed, device);
            if (training.Kure is not null)
            {
                task.Regularizer = KurtosisRegularizer.For(network.WeightMatrices(), training.Kure).Loss;
                fingerprint += " kure " + JsonSerializer.Serialize(training.Kure, Json);
            }
            var history = TrainingLoop.Run(task, training, fingerprint, progress, cancellationToken);
            return new QuantizedSequenceClassifier(network, options, KurtosisFineTuning.Continue(before, history), device);
        }
        catch
        {
            network.Dispose();
            throw;
        }
    }

    /// <summary>Classifies one token sequence.</summary>
    public SequenceClassifierPrediction Predict(int[] sequence)
    {
        ArgumentNullException.ThrowIfNull(sequence);
        return PredictBatch(new[] { sequence })[0];
    }

    /// <summary>Classifies one float sequence (frames of <see cref="SequenceClassifierOptions.FrameSize"/> values).</summary>
    public SequenceClassifierPrediction Predict(float[] sequence)
    {
        ArgumentNullException.ThrowIfNull(sequence);
        return PredictBatch(new[] { sequence })[0];
    }

    /// <summary>Classifies token sequences of any lengths, in padded batches; the answers equal one-by-one prediction.</summary>
    public SequenceClassifierPrediction[] PredictBatch(IReadOnlyList<int[]> sequences) => Predict(TokenData(sequences, null, nameof(sequences)));

    /// <summary>Classifies float sequences of any lengths, in padded batches; the answers equal one-by-one prediction.</summary>
    public SequenceClassifierPrediction[] PredictBatch(IReadOnlyList<float[]> sequences) => Predict(FrameData(sequences, null, nameof(sequences)));

    /// <summary>Accuracy, log-loss and (binary) AUC on labelled token sequences.</summary>
    public SequenceClassifierEvaluation Evaluate(IReadOnlyList<int[]> sequences, int[] labels)
    {
        ArgumentNullException.ThrowIfNull(labels);
        return Evaluate(TokenData(sequences, labels, nameof(sequences)));
    }

    /// <summary>Accuracy, log-loss and (binary) AUC on labelled float sequences.</summary>
    public SequenceClassifierEvaluation Evaluate(IReadOnlyList<float[]> sequences, int[] labels)
    {
        ArgumentNullException.ThrowIfNull(labels);
        return Evaluate(FrameData(sequences, labels, nameof(sequences)));
    }

    /// <summary>
    /// Post-training re-quantization: a new classifier whose recurrent weights (and head weights, when
    /// <see cref="SequenceClassifierOptions.QuantizeEmbeddingAndHead"/>) use <paramref name="weights"/> instead, from the
    /// same float shadow weights, biases and normalization state, without retraining; a separately chosen
    /// <see cref="SequenceClassifierOptions.EmbeddingQuantizer"/> stays. E.g. <c>new QuantizerOptions { Kind =
    /// QuantizerKind.Uniform, Bits = 3 }</c>, or a step 5% off with <c>StepSizeMultiplier = 1.05</c>. With
    /// <paramref name="activations"/> the activations <see cref="QuantizedRecurrentOptions.QuantizedActivations"/> names (by
    /// default the gates and hidden state) take that activation quantizer instead of the trained one (post-training
    /// activation quantization); null (the default) keeps the trained one. <paramref name="quantizedActivations"/> chooses
    /// which activations that is; null (the default) keeps the model's. This model is left as it is; dispose the new one.
    /// </summary>
    /// <param name="weights">The new weight quantizer.</param>
    /// <param name="activations">The new activation quantizer, or null (the default) to keep the trained one.</param>
    /// <param name="quantizedActivations">The activations the activation quantizer applies to, or null (the default) to keep the model's.</param>
    /// <exception cref="ArgumentException">
    /// <paramref name="weights"/> is not a valid weight quantizer, <paramref name="activations"/> not a valid activation
    /// quantizer, or <paramref name="quantizedActivations"/> does not fit the cell or the quantizer (the message names it).
    /// </exception>
    public QuantizedSequenceClassifier WithQuantization(QuantizerOptions weights, QuantizerOptions? activations = null, RecurrentActivations? quantizedActivations = null)
    {
        var options = Requantization.OptionsWith(_options, weights, activations, quantizedActivations);
        var network = Requantization.Copy(Network, _options, options, _device);
        return new QuantizedSequenceClassifier(network, options, History, _device);
    }

    /// <summary>Honest size: parameters, bits per quantized weight including scales, packed and float32 bytes.</summary>
    public ModelSizeReport SizeReport() => PackedModelEncoder.SizeReport(Network, Network.WeightMatrices());

    /// <summary>
    /// The deployable form of this classifier: its weights packed as their quantizers encode them (codes and scales,
    /// weight and batch normalization folded in), scored by the managed engine of Microsoft.ML.Quantized.Runtime without
    /// libtorch, and saved without the float training weights (<see cref="PackedModel.Save(string)"/>).
    /// </summary>
    public PackedSequenceClassifier Pack() => new(PackedModelEncoder.Encode(Network), _options.Clone(), History.ToArray(), SizeReport());

    /// <summary>
    /// Saves the model with its float training weights (options, input kind, history, weights) to a versioned,
    /// checksummed file: the file to continue training or fine-tune from. To deploy, save <see cref="Pack"/> instead.
    /// </summary>
    public void Save(string path)
    {
        using var file = File.Create(path);
        Save(file);
    }

    /// <summary>Saves the model to a stream.</summary>
    public void Save(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var header = new Header(_options, InputKind, History.ToArray());
        ModelFile.Write(stream, Kind, JsonSerializer.Serialize(header, Json), TrainingLoop.SaveWeights(Network));
    }

    /// <summary>Loads a model saved by <see cref="Save(string)"/>.</summary>
    /// <exception cref="ModelFormatException">The file is damaged, not a sequence classifier, or of another format version.</exception>
    public static QuantizedSequenceClassifier Load(string path, string device = "cpu")
    {
        using var file = File.OpenRead(path);
        return Load(file, device);
    }

    /// <summary>Loads a model from a stream.</summary>
    /// <exception cref="ModelFormatException">The stream is damaged, not a sequence classifier, or of another format version.</exception>
    public static QuantizedSequenceClassifier Load(Stream stream, string device = "cpu")
    {
        ArgumentNullException.ThrowIfNull(stream);
        var (json, payload) = ModelFile.Read(stream, Kind);
        var header = ModelFile.ReadHeader<Header>(json, Kind);
        var torchDevice = DeviceResolver.Resolve(device);
        int inputSize = header.InputKind == SequenceClassifierInputKind.Tokens ? header.Options.VocabularySize : header.Options.FrameSize;
        var network = new SequenceClassifierNetwork(header.InputKind, inputSize, header.Options);
        TrainingLoop.LoadWeights(network, payload);
        network.to(torchDevice);
        network.eval();
        return new QuantizedSequenceClassifier(network, header.Options, header.History, torchDevice);
    }

    /// <summary>Releases the model's tensors.</summary>
    public void Dispose() => Network.Dispose();

    private SequenceClassifierData TokenData(IReadOnlyList<int[]> sequences, int[]? labels, string name)
    {
        ArgumentNullException.ThrowIfNull(sequences, name);
        if (InputKind != SequenceClassifierInputKind.Tokens)
            throw new InvalidOperationException($"This classifier reads float frames (FrameSize {_options.FrameSize}), not token ids; pass float[] sequences.");
        return SequenceClassifierData.FromTokens(sequences, labels, _options.VocabularySize, ClassCount, name);
    }

    private SequenceClassifierData FrameData(IReadOnlyList<float[]> sequences, int[]? labels, string name)
    {
        ArgumentNullException.ThrowIfNull(sequences, name);
        if (InputKind != SequenceClassifierInputKind.Frames)
            throw new InvalidOperationException($"This classifier reads token ids (vocabulary {_options.VocabularySize}), not float frames; pass int[] sequences.");
        return SequenceClassifierData.FromFrames(sequences, labels, _options.FrameSize, ClassCount, name);
    }

    private float[] LogProbabilities(SequenceClassifierData data)
    {
        using var noGrad = torch.no_grad();
        Network.eval();
        return SequenceClassifierTask.LogProbabilities(Network, data, _device);
    }

    private SequenceClassifierPrediction[] Predict(SequenceClassifierData data)
    {
        var logProbabilities = LogProbabilities(data);
        int classes = ClassCount;
        var result = new SequenceClassifierPrediction[data.Count];
        for (int i = 0; i < result.Length; i++)
        {
            var p = new float[classes];
            int best = 0;
            for (int c = 0; c < classes; c++)
            {
                float lp = logProbabilities[(long)i * classes + c];
                p[c] = MathF.Exp(lp);
                if (lp > logProbabilities[(long)i * classes + best]) best = c;
            }
            result[i] = new SequenceClassifierPrediction(best, p);
        }
        return result;
    }

    internal SequenceClassifierEvaluation Evaluate(SequenceClassifierData data) =>
        SequenceClassifierEvaluation.Of(LogProbabilities(data), data.Labels!, ClassCount);

    private static void CheckValidationPair<T>(IReadOnlyList<T>? sequences, int[]? labels)
    {
        if ((sequences is null) != (labels is null))
            throw new ArgumentException("Give both validationSequences and validationLabels, or neither.", sequences is null ? "validationSequences" : "validationLabels");
    }

    private sealed record Header(SequenceClassifierOptions Options, SequenceClassifierInputKind InputKind, EpochSummary[] History);
}
