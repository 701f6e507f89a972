using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using TorchSharp;

namespace Microsoft.ML.Quantized;

/// <summary>
/// KURE fine-tuning (Shkolnik et al. 2020) of a fitted <see cref="QuantizedRecurrentLanguageModelTransformer"/>: Fit
/// reads the token-key column the model was trained on, continues training a copy of the model with the kurtosis term
/// <c>Lambda * mean (Kurt(W) - Target)^2</c> added to the loss (Adam, the model's BPTT window), and returns a new
/// transformer of the same kind (LSTM or GRU, same quantizer, columns, key map and settings) whose weights hold up
/// better under post-training quantization (<see cref="QuantizedCatalog.WithQuantization(QuantizedRecurrentLanguageModelTransformer, QuantizerOptions, QuantizerOptions?, RecurrentActivations?)"/>). The source transformer
/// is left as it is. Create it with <c>mlContext.Transforms.KureFineTune(...)</c>.
/// </summary>
/// <remarks>
/// Rows are read as the language-model estimator reads them (one stream, <c>&lt;eos&gt;</c> before each row); keys the
/// model never saw and empty rows follow the model's <see cref="QuantizedRecurrentLanguageModelTransformer.UnknownTokens"/>. The source transformer does not
/// score while it is being copied and fine-tuned (they share a lock). The new model's history is the source's
/// followed by the fine-tuning epochs.
/// </remarks>
public sealed class KureFineTuneEstimator : IEstimator<QuantizedRecurrentLanguageModelTransformer>
{
    private readonly IHostEnvironment _env;
    private readonly IHost _host;
    private readonly QuantizedRecurrentLanguageModelTransformer _model;
    private readonly KureFineTuneOptions _options;

    internal KureFineTuneEstimator(IHostEnvironment env, QuantizedRecurrentLanguageModelTransformer model, KureFineTuneOptions? options)
    {
        Contracts.CheckValue(env, nameof(env));
        _env = env;
        _host = env.Register("KureFineTune");
        _host.CheckValue(model, nameof(model));
        _model = model;
        _options = KureFineTuneOptions.Checked(_host, options);
    }

    /// <summary>The token-key column read (the model's input column).</summary>
    public string InputColumnName => _model.InputColumnName;

    /// <summary>The hidden-state feature column the fine-tuned transformer adds.</summary>
    public string OutputColumnName => _model.OutputColumnName;

    /// <summary>The per-row perplexity column the fine-tuned transformer adds.</summary>
    public string PerplexityColumnName => _model.PerplexityColumnName;

    /// <summary>Fine-tunes a copy of the model on the token column of <paramref name="input"/>.</summary>
    public QuantizedRecurrentLanguageModelTransformer Fit(IDataView input)
    {
        _host.CheckValue(input, nameof(input));
        var train = TokenIdStream.Read(_host, _model, input, "fine-tuning data");
        var valid = _options.ValidationData is { } validation ? TokenIdStream.Read(_host, _model, validation, "validation data") : null;
        var training = TrainingOptions(HostTraining.Seed(_env, _host, _options.Seed));
        using var ch = _host.Start("KURE fine-tuning");
        QuantizedLanguageModel tuned;
        try
        {
            tuned = _model.UseModel(model =>
            {
                var device = model.Network.parameters().First().device;
                training.Device = device.type == DeviceType.CUDA ? $"cuda:{device.index}" : "cpu";
                ch.Info($"{train.Length} tokens (row separators included); {model.Options.Recurrent.Cell} with weights {model.Options.Recurrent.WeightQuantizer}; " +
                        $"KURE lambda {string.Join(" or ", _options.Lambdas)}, target {_options.Kure.Target}, tensors {_options.Kure.Tensors}; " +
                        $"{training.Epochs} epochs of Adam at {training.LearningRate:G4}, seed {training.Seed}, device {training.Device}.");
                using var progress = new ChannelProgress(_host, ch, _options.Progress, "KURE ", null);
                using var cancellation = new HostCancellation(_host, _options.CancellationToken);
                return KureLambdaSearch.Choose(ch, _options.Lambdas, $"validation cross-entropy at {_options.SearchQuantizer}",
                    lambda => model.FineTuneWithKure(train, valid, WithLambda(_options.Kure, lambda), training, cancellation.Observe(progress), cancellation.Token),
                    tuned =>
                    {
                        using var quantized = tuned.WithQuantization(_options.SearchQuantizer);
                        return quantized.Evaluate(valid!).CrossEntropy;
                    });
            });
        }
        catch (ArgumentException e) when (e.ParamName is "trainingTokens" or "tokens")
        {
            throw ch.Except(e, $"Column '{InputColumnName}': {e.Message} Use more data or a smaller KureFineTuneOptions.BatchSize.");
        }
        try
        {
            var last = tuned.History.LastOrDefault();
            if (last is not null)
                ch.Info($"Fine-tuned: training loss {last.TrainingLoss:F4}{(double.IsNaN(last.ValidationLoss) ? "" : $", validation loss {last.ValidationLoss:F4}")}.");
            return _model.WithModel(tuned, _env);
        }
        catch
        {
            tuned.Dispose();
            throw;
        }
    }

    /// <summary>The schema after the fine-tuned transformer: the input plus the feature vector and perplexity columns.</summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
        => QuantizedRecurrentLanguageModelEstimator.OutputSchema(_host, inputSchema, InputColumnName, OutputColumnName, PerplexityColumnName);

    private static KureOptions WithLambda(KureOptions kure, double lambda)
    {
        var copy = kure.Clone();
        copy.Lambda = lambda;
        return copy;
    }

    private TrainingOptions TrainingOptions(int seed)
    {
        var training = _options.Training(_model.UseModel(m => m.SequenceLength));
        training.Seed = seed;
        return training;
    }
}
