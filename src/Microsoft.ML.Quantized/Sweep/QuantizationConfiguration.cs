using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Microsoft.ML.Quantized.Sweep;

/// <summary>
/// One point of a <see cref="QuantizationSearchSpace"/>: what a trial trains. Converts to
/// <see cref="QuantizedRecurrentOptions"/> and <see cref="TrainingOptions"/>, has a canonical <see cref="Key"/>
/// (equal keys = equal configurations; used to skip repeats and to resume) and round-trips through JSON.
/// </summary>
public sealed record QuantizationConfiguration
{
    /// <summary>Weight quantizer and bit width. Default float.</summary>
    public QuantizerChoice WeightQuantizer { get; init; } = QuantizerChoice.Float;

    /// <summary>Activation quantizer (None, BernoulliTernary, Uniform k). Default none.</summary>
    public QuantizerChoice ActivationQuantizer { get; init; } = QuantizerChoice.Float;

    /// <summary>HitNet slope lambda applied to every gate. Default 1 (standard activations).</summary>
    public double ActivationSlope { get; init; } = 1.0;

    /// <summary>In-cell normalization. Default none.</summary>
    public RecurrentNormalization Normalization { get; init; } = RecurrentNormalization.None;

    /// <summary>LSTM or GRU. Default LSTM.</summary>
    public RecurrentCellKind Cell { get; init; } = RecurrentCellKind.Lstm;

    /// <summary>Hidden units per layer. Default 256 (as <see cref="QuantizedRecurrentOptions.HiddenSize"/>).</summary>
    public int HiddenSize { get; init; } = 256;

    /// <summary>Initial learning rate. Default 2e-3 (Adam).</summary>
    public double LearningRate { get; init; } = 2e-3;

    /// <summary>Train with kurtosis regularization (KURE); the trial runner maps it to its training options. Default false.</summary>
    public bool UseKure { get; init; }

    /// <summary>
    /// Canonical key, e.g. <c>cell=lstm;hidden=128;w=twn;a=none;slope=0.5;norm=layer;lr=0.003;kure=false</c>.
    /// Numbers are written in invariant round-trip form; the key has no commas (CSV-safe).
    /// </summary>
    [JsonIgnore]
    public string Key => string.Create(CultureInfo.InvariantCulture,
        $"cell={Cell.ToString().ToLowerInvariant()};hidden={HiddenSize};w={WeightQuantizer?.Name};a={ActivationQuantizer?.Name};" +
        $"slope={ActivationSlope:R};norm={Normalization.ToString().ToLowerInvariant()};lr={LearningRate:R};kure={(UseKure ? "true" : "false")}");

    /// <summary>
    /// The recurrent options of this configuration: a copy of <paramref name="template"/> (layers, dropout, ...;
    /// default <c>new QuantizedRecurrentOptions()</c>) with the cell, hidden size, quantizers, slopes and
    /// normalization set from this configuration.
    /// </summary>
    public QuantizedRecurrentOptions ToRecurrentOptions(QuantizedRecurrentOptions? template = null)
    {
        var options = template?.Clone() ?? new QuantizedRecurrentOptions();
        options.Cell = Cell;
        options.HiddenSize = HiddenSize;
        options.WeightQuantizer = WeightQuantizer.ToOptions();
        options.ActivationQuantizer = ActivationQuantizer.ToOptions();
        options.Slopes = ActivationSlopes.All(ActivationSlope);
        options.Normalization = Normalization;
        return options;
    }

    /// <summary>
    /// A copy of <paramref name="template"/> (default <c>new TrainingOptions()</c>) with this learning rate. KURE is
    /// the trial runner's to map (see <see cref="UseKure"/>).
    /// </summary>
    public TrainingOptions ToTrainingOptions(TrainingOptions? template = null)
    {
        var options = template?.Clone() ?? new TrainingOptions();
        options.LearningRate = LearningRate;
        return options;
    }

    /// <summary>This configuration as JSON (quantizers as registry names, enums as names).</summary>
    public string ToJson() => JsonSerializer.Serialize(this, SweepJson.Options);

    /// <summary>
    /// Reads a configuration written by <see cref="ToJson"/>; throws <see cref="ArgumentException"/> for JSON that is
    /// not a valid configuration, naming the problem.
    /// </summary>
    public static QuantizationConfiguration FromJson(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        QuantizationConfiguration? configuration;
        try
        {
            configuration = JsonSerializer.Deserialize<QuantizationConfiguration>(json, SweepJson.Options);
        }
        catch (JsonException e)
        {
            throw new ArgumentException($"Not a quantization configuration: {e.Message}", nameof(json), e);
        }
        if (configuration is null) throw new ArgumentException("Not a quantization configuration: the JSON is null.", nameof(json));
        configuration.Validate(nameof(json));
        return configuration;
    }

    /// <summary>The key.</summary>
    public override string ToString() => Key;

    /// <summary>Checks that this configuration builds a valid model (the same checks training makes).</summary>
    internal void Validate(string name)
    {
        if (WeightQuantizer is null || ActivationQuantizer is null)
            throw new ArgumentException($"{name}: WeightQuantizer and ActivationQuantizer must not be null.", name);
        try
        {
            OptionsValidator.Validate(ToRecurrentOptions(), "QuantizationConfiguration");
        }
        catch (ArgumentException e)
        {
            throw new ArgumentException($"{name} ({Key}) is not a valid configuration: {e.Message}", name, e);
        }
        if (!double.IsFinite(LearningRate) || LearningRate <= 0)
            throw new ArgumentOutOfRangeException(name, LearningRate, $"{name}: QuantizationConfiguration.LearningRate must be positive and finite; got {LearningRate}.");
    }
}
