using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized;

/// <summary>
/// A trained quantized recurrent language model (word or character level): evaluate perplexity or bits per
/// character, generate text, report its packed size, save and load. Holds its own torch state; dispose it.
/// </summary>
public sealed class QuantizedLanguageModel : IDisposable, ITrainingWeights
{
    private const string Kind = "language-model";
    private static JsonSerializerOptions Json => ModelFile.HeaderJson;
    private readonly Device _device;

    private QuantizedLanguageModel(LanguageModelNetwork network, Vocabulary vocabulary, LanguageModelOptions options,
        IReadOnlyList<EpochSummary> history, int sequenceLength, Device device)
    {
        Network = network;
        Vocabulary = vocabulary;
        _options = options;
        History = history;
        SequenceLength = sequenceLength;
        _device = device;
    }

    private readonly LanguageModelOptions _options;

    /// <summary>The vocabulary the model reads and writes.</summary>
    public Vocabulary Vocabulary { get; }

    /// <summary>A copy of the model's options.</summary>
    public LanguageModelOptions Options => _options.Clone();

    /// <summary>Training history, one entry per epoch run.</summary>
    public IReadOnlyList<EpochSummary> History { get; }

    /// <summary>BPTT window used in training and evaluation.</summary>
    public int SequenceLength { get; }

    /// <summary>
    /// True when the recurrent stack runs libtorch's fused kernel: weight-only quantization with no or weight normalization and
    /// slopes of 1, except a GRU on a CPU with 512-bit vectors, whose hand-written loop is the faster there.
    /// </summary>
    public bool UsesFusedKernel => Network.Recurrent.UsesFusedKernel;

    internal LanguageModelNetwork Network { get; }

    /// <summary>Trains a model on text, validating on <paramref name="validationText"/> (optional) after each epoch.</summary>
    public static QuantizedLanguageModel Train(Vocabulary vocabulary, string trainingText, string? validationText,
        LanguageModelOptions? options = null, TrainingOptions? training = null,
        IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(vocabulary);
        ArgumentNullException.ThrowIfNull(trainingText);
        return Train(vocabulary, vocabulary.Encode(trainingText, skipUnknownCharacters: true),
            validationText is null ? null : vocabulary.Encode(validationText, skipUnknownCharacters: true),
            options, training, progress, cancellationToken);
    }

    /// <summary>Trains a model on token ids (each in [0, vocabulary.Count)).</summary>
    public static QuantizedLanguageModel Train(Vocabulary vocabulary, int[] trainingTokens, int[]? validationTokens,
        LanguageModelOptions? options = null, TrainingOptions? training = null,
        IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(vocabulary);
        ArgumentNullException.ThrowIfNull(trainingTokens);
        options = options?.Clone() ?? new LanguageModelOptions();
        training = training?.Clone() ?? new TrainingOptions();
        OptionsValidator.Validate(options);
        OptionsValidator.Validate(training);
        vocabulary.CheckIds(trainingTokens, nameof(trainingTokens));
        if (validationTokens is not null) vocabulary.CheckIds(validationTokens, nameof(validationTokens));
        var device = DeviceResolver.Resolve(training.Device);
        RecurrentBatchNorm.KeepTrainedStatisticSets(options.Recurrent, training.SequenceLength);

        using var random = TrainingRandom.Use(training.Seed);
        var network = new LanguageModelNetwork(vocabulary.Count, options);
        network.to(device);
        using var train = new TokenStreamBatcher(trainingTokens, training.BatchSize, training.SequenceLength, device);
        using var validation = validationTokens is null ? null : new TokenStreamBatcher(validationTokens, PackedLanguageModel.EvaluationStreams(validationTokens.Length), training.SequenceLength, device);
        using var task = new LanguageModelTask(network, train, validation) { StateResetProbability = training.StateResetProbability };
        var fingerprint = JsonSerializer.Serialize(new { options, vocabulary = vocabulary.Count, training.Seed, training.BatchSize, training.SequenceLength, training.Optimizer, training.LearningRate }, Json)
            + StateResetFingerprint(training);
        if (training.Kure is not null)
        {
            task.Regularizer = KurtosisRegularizer.For(network.WeightMatrices(), training.Kure).Loss;
            fingerprint += " kure " + JsonSerializer.Serialize(training.Kure, Json);
        }
        var history = TrainingLoop.Run(task, training, fingerprint, progress, cancellationToken);
        return new QuantizedLanguageModel(network, vocabulary, options, history, training.SequenceLength, device);
    }

    /// <summary>
    /// Post-training re-quantization: a new model with the same float shadow weights, biases and normalization state
    /// whose weight quantizer is <paramref name="weights"/> (any kind, bits, step-size multiplier or power-of-two step),
    /// without retraining. The recurrent weights take the new quantizer, and so do the embedding and decoder when
    /// <see cref="LanguageModelOptions.QuantizeEmbeddingAndDecoder"/> is set. With <paramref name="activations"/> the
    /// activations <see cref="QuantizedRecurrentOptions.QuantizedActivations"/> names (by default the gates and hidden state)
    /// take that activation quantizer instead of the trained one (post-training activation quantization,
    /// e.g. <c>new QuantizerOptions { Kind = QuantizerKind.Uniform, Bits = 4 }</c>: a dynamic step of max |x| / 7 per
    /// tensor); null (the default) keeps the trained one. <paramref name="quantizedActivations"/> chooses which activations
    /// that is (e.g. <see cref="RecurrentActivations.CellState"/> alone); null (the default) keeps the model's. Learned
    /// quantizer state (an LSQ step) is kept only when the quantizer is unchanged; otherwise it starts fresh (initialized
    /// from max |w| at first use). This model is left as it is; dispose the new one separately.
    /// </summary>
    /// <param name="weights">The new weight quantizer.</param>
    /// <param name="activations">The new activation quantizer, or null (the default) to keep the trained one.</param>
    /// <param name="quantizedActivations">The activations the activation quantizer applies to, or null (the default) to keep the model's.</param>
    /// <exception cref="ArgumentException">
    /// <paramref name="weights"/> is not a valid weight quantizer, <paramref name="activations"/> not a valid activation
    /// quantizer, or <paramref name="quantizedActivations"/> does not fit the cell or the quantizer (the message names the option).
    /// </exception>
    public QuantizedLanguageModel WithQuantization(QuantizerOptions weights, QuantizerOptions? activations = null, RecurrentActivations? quantizedActivations = null)
    {
        var options = Requantization.OptionsWith(_options, weights, activations, quantizedActivations);
        var network = Requantization.Copy(Network, _options, options, _device);
        return new QuantizedLanguageModel(network, Vocabulary, options, History, SequenceLength, _device);
    }

    /// <summary>
    /// KURE fine-tuning (Shkolnik et al. 2020): continues training from this model's weights on <paramref name="trainingText"/>
    /// with the kurtosis term added to the loss, using Adam at <paramref name="learningRate"/> (the paper's 1e-3), and returns
    /// a new model of the same configuration (this one is left as it is). Fine-tune a float model, then quantize it after
    /// training with <see cref="WithQuantization"/> at whatever bit width the target needs.
    /// </summary>
    public QuantizedLanguageModel FineTuneWithKure(string trainingText, KureOptions? kure = null, int epochs = 1, double learningRate = 1e-3,
        IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(trainingText);
        return FineTuneWithKure(Vocabulary.Encode(trainingText, skipUnknownCharacters: true), kure, epochs, learningRate, progress, cancellationToken);
    }

    /// <summary>KURE fine-tuning on token ids (see <see cref="FineTuneWithKure(string, KureOptions?, int, double, IProgress{TrainingProgress}?, CancellationToken)"/>).</summary>
    public QuantizedLanguageModel FineTuneWithKure(int[] trainingTokens, KureOptions? kure = null, int epochs = 1, double learningRate = 1e-3,
        IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
        => FineTuneWithKure(trainingTokens, null, kure ?? new KureOptions(), KurtosisFineTuning.Training(epochs, learningRate, SequenceLength), progress, cancellationToken);

    /// <summary>
    /// KURE fine-tuning with full control of the training run (optimizer, batch, clipping, validation, checkpoints);
    /// <paramref name="kure"/> replaces <see cref="TrainingOptions.Kure"/>. The history of the new model is this model's
    /// followed by the fine-tuning epochs.
    /// </summary>
    public QuantizedLanguageModel FineTuneWithKure(int[] trainingTokens, int[]? validationTokens, KureOptions kure, TrainingOptions training,
        IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(trainingTokens);
        ArgumentNullException.ThrowIfNull(kure);
        ArgumentNullException.ThrowIfNull(training);
        training = training.Clone();
        training.Kure = kure.Clone();
        OptionsValidator.Validate(training);
        Vocabulary.CheckIds(trainingTokens, nameof(trainingTokens));
        if (validationTokens is not null) Vocabulary.CheckIds(validationTokens, nameof(validationTokens));
        var device = DeviceResolver.Resolve(training.Device);
        using var random = TrainingRandom.Use(training.Seed);
        var network = Requantization.Copy(Network, _options, _options, device);
        try
        {
            using var train = new TokenStreamBatcher(trainingTokens, training.BatchSize, training.SequenceLength, device);
            using var validation = validationTokens is null ? null : new TokenStreamBatcher(validationTokens, PackedLanguageModel.EvaluationStreams(validationTokens.Length), training.SequenceLength, device);
            using var task = new LanguageModelTask(network, train, validation)
            {
                Regularizer = KurtosisRegularizer.For(network.WeightMatrices(), training.Kure).Loss,
                StateResetProbability = training.StateResetProbability,
            };
            var fingerprint = "kure-fine-tune " + JsonSerializer.Serialize(new { options = _options, vocabulary = Vocabulary.Count, training.Seed, training.BatchSize, training.SequenceLength, training.Optimizer, training.LearningRate, training.Kure }, Json)
                + StateResetFingerprint(training);
            var history = TrainingLoop.Run(task, training, fingerprint, progress, cancellationToken);
            return new QuantizedLanguageModel(network, Vocabulary, _options, KurtosisFineTuning.Continue(History, history), training.SequenceLength, device);
        }
        catch
        {
            network.Dispose();
            throw;
        }
    }

    /// <summary>The checkpoint fingerprint's part for state resets: empty at the default, so checkpoints written before the option existed still resume.</summary>
    private static string StateResetFingerprint(TrainingOptions training) =>
        training.StateResetProbability > 0 ? " state-reset " + training.StateResetProbability.ToString("R", System.Globalization.CultureInfo.InvariantCulture) : "";

    /// <summary>Cross-entropy, perplexity and bits per token of the model on <paramref name="text"/>.</summary>
    public LanguageModelEvaluation Evaluate(string text) => Evaluate(Vocabulary.Encode(text, skipUnknownCharacters: true));

    /// <summary>Cross-entropy, perplexity and bits per token on token ids (state carried, batch of parallel streams).</summary>
    public LanguageModelEvaluation Evaluate(int[] tokens)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        Vocabulary.CheckIds(tokens, nameof(tokens));
        using var noGrad = torch.no_grad();
        Network.eval();
        using var data = new TokenStreamBatcher(tokens, PackedLanguageModel.EvaluationStreams(tokens.Length), SequenceLength, _device);
        return new LanguageModelEvaluation(LanguageModelTask.MeanCrossEntropy(Network, data), data.TargetCount);
    }

    /// <summary>
    /// Re-estimates the running statistics of every recurrent batch normalization over the first <paramref name="windows"/>
    /// windows of <paramref name="tokens"/> (batches of <paramref name="batchSize"/> streams, the state carried), with every
    /// quantizer and dropout as in evaluation: the statistics the evaluation rule of a stochastic quantizer (HitNet's BTQ)
    /// produces, in place of those gathered under its training rule. Each window folds in with the normalization's momentum,
    /// as in training. The model is left in evaluation mode; a model without batch normalization is unchanged.
    /// </summary>
    internal void RecalibrateBatchNorm(int[] tokens, int windows, int batchSize)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        Vocabulary.CheckIds(tokens, nameof(tokens));
        if (windows < 1) throw new ArgumentOutOfRangeException(nameof(windows), windows, "At least one window is needed.");
        using var data = new TokenStreamBatcher(tokens, batchSize, SequenceLength, _device);
        RecurrentState? state = null;
        try
        {
            BatchNormRecalibration.Run(Network, Math.Min(windows, data.WindowCount), i =>
            {
                var (input, _) = data.Window(i);
                var (_, next) = Network.Forward(input, state);
                state?.Dispose();
                state = next.DetachFromDisposeScope();
            });
        }
        finally
        {
            state?.Dispose();
        }
    }

    /// <summary>
    /// Continues <paramref name="prompt"/> with <paramref name="length"/> sampled tokens. Temperature 1 samples
    /// the model's distribution; lower is more conservative; 0 takes the most likely token. The prompt is read from the zero
    /// state; a model trained with <see cref="TrainingOptions.StateResetProbability"/> above 0 has learned to start there.
    /// </summary>
    public string Generate(string prompt, int length, double temperature = 1.0, int seed = 0)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        if (length < 0) throw new ArgumentOutOfRangeException(nameof(length), length, "length must be zero or positive.");
        if (!(temperature >= 0) || double.IsInfinity(temperature)) throw new ArgumentOutOfRangeException(nameof(temperature), temperature, "temperature must be a finite number >= 0.");
        var ids = PackedLanguageModel.PromptIds(Vocabulary, prompt);
        using var noGrad = torch.no_grad();
        Network.eval();
        using var generator = new Generator((ulong)seed, _device);
        var produced = new List<int>(length);
        RecurrentState? state = null;
        try
        {
            using (var scope = torch.NewDisposeScope())
            {
                var input = torch.tensor(ids.Select(i => (long)i).ToArray(), device: _device).reshape(-1, 1);
                var (logits, next) = Network.Forward(input, null);
                state = next.DetachFromDisposeScope();
                produced.Add(Sample(logits[-1, 0], temperature, generator));
            }
            while (produced.Count < length)
            {
                using var scope = torch.NewDisposeScope();
                var input = torch.tensor(new long[] { produced[^1] }, device: _device).reshape(1, 1);
                var (logits, next) = Network.Forward(input, state);
                state.Dispose();
                state = next.DetachFromDisposeScope();
                produced.Add(Sample(logits[0, 0], temperature, generator));
            }
        }
        finally
        {
            state?.Dispose();
        }
        return Vocabulary.Decode(produced.Take(length));
    }

    /// <summary>Honest size: parameters, bits per quantized weight including scales, packed and float32 bytes.</summary>
    public ModelSizeReport SizeReport() => PackedModelEncoder.SizeReport(Network, Network.WeightMatrices());

    /// <summary>
    /// The deployable form of this model: its weights packed as their quantizers encode them (codes and scales, weight
    /// and batch normalization folded in), scored by the managed engine of Microsoft.ML.Quantized.Runtime without
    /// libtorch, and saved without the float training weights (<see cref="PackedModel.Save(string)"/>).
    /// </summary>
    public PackedLanguageModel Pack() => new(PackedModelEncoder.Encode(Network), _options.Clone(), Vocabulary, History.ToArray(), SizeReport());

    /// <summary>
    /// Saves the model with its float training weights (options, vocabulary, history, weights) to a versioned,
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
        var header = new Header(_options, Vocabulary.Tokens.ToArray(), Vocabulary.IsCharacterLevel, History.ToArray(), SequenceLength);
        ModelFile.Write(stream, Kind, JsonSerializer.Serialize(header, Json), TrainingLoop.SaveWeights(Network));
    }

    /// <summary>Loads a model saved by <see cref="Save(string)"/>.</summary>
    /// <exception cref="ModelFormatException">The file is damaged, not a language model, or of another format version.</exception>
    public static QuantizedLanguageModel Load(string path, string device = "cpu")
    {
        using var file = File.OpenRead(path);
        return Load(file, device);
    }

    /// <summary>Loads a model from a stream.</summary>
    public static QuantizedLanguageModel Load(Stream stream, string device = "cpu")
    {
        var (json, payload) = ModelFile.Read(stream, Kind);
        var header = ModelFile.ReadHeader<Header>(json, Kind);
        var vocabulary = Vocabulary.FromTokens(header.Tokens, header.CharacterLevel);
        var torchDevice = DeviceResolver.Resolve(device);
        var network = new LanguageModelNetwork(vocabulary.Count, header.Options);
        TrainingLoop.LoadWeights(network, payload);
        network.to(torchDevice);
        network.eval();
        return new QuantizedLanguageModel(network, vocabulary, header.Options, header.History, header.SequenceLength, torchDevice);
    }

    /// <summary>Releases the model's tensors.</summary>
    public void Dispose() => Network.Dispose();


    private static int Sample(Tensor logits, double temperature, Generator generator)
    {
        if (temperature == 0) return (int)logits.argmax().item<long>();
        using var t = temperature.ToScalar();
        using var probabilities = nn.functional.softmax(logits.div(t), 0);
        using var choice = torch.multinomial(probabilities, 1, generator: generator);
        return (int)choice.item<long>();
    }

    private sealed record Header(LanguageModelOptions Options, string[] Tokens, bool CharacterLevel, EpochSummary[] History, int SequenceLength);
}
