using System.Text.Json.Serialization;

namespace Microsoft.ML.Quantized;

/// <summary>
/// The quantized recurrent stack: cell, sizes, weight and activation quantizers, slopes and normalization.
/// Shared by the language model and the sequence classifiers.
/// </summary>
public sealed class QuantizedRecurrentOptions : IJsonOnDeserializing
{
    /// <summary>LSTM or GRU. Default LSTM.</summary>
    public RecurrentCellKind Cell { get; set; } = RecurrentCellKind.Lstm;

    /// <summary>Hidden units per layer. Default 256.</summary>
    public int HiddenSize { get; set; } = 256;

    /// <summary>Stacked layers. Default 1.</summary>
    public int Layers { get; set; } = 1;

    /// <summary>Dropout between layers and on the stack's output, in [0, 1). Default 0.</summary>
    public double Dropout { get; set; }

    /// <summary>Quantizer for the input-to-hidden and hidden-to-hidden weights. Default none (float).</summary>
    public QuantizerOptions WeightQuantizer { get; set; } = new();

    /// <summary>
    /// Quantizer for the gate and hidden activations: <see cref="QuantizerKind.BernoulliTernary"/> (HitNet)
    /// or <see cref="QuantizerKind.Uniform"/> (k-bit). Default none. Any activation quantizer runs the cell loop.
    /// </summary>
    public QuantizerOptions ActivationQuantizer { get; set; } = new();

    /// <summary>
    /// Which activations <see cref="ActivationQuantizer"/> quantizes. Default <see cref="RecurrentActivations.Gates"/> |
    /// <see cref="RecurrentActivations.Hidden"/> (HitNet's choice: the cell state stays float). Read only when an activation
    /// quantizer is set.
    /// </summary>
    public RecurrentActivations QuantizedActivations { get; set; } = RecurrentActivations.Gates | RecurrentActivations.Hidden;

    /// <summary>Activation slopes (HitNet lambda), per gate. Default all 1.</summary>
    public ActivationSlopes Slopes { get; set; } = new();

    /// <summary>In-cell normalization (Hou et al. 2019). Default none.</summary>
    public RecurrentNormalization Normalization { get; set; } = RecurrentNormalization.None;

    /// <summary>
    /// <see cref="RecurrentNormalization.Layer"/> only: normalize each gate's pre-activations on their own and leave the
    /// cell state alone (<see cref="Quantized.LayerNormForm.PerGate"/>, Hou et al. 2019, the default), or all G*H together
    /// and the LSTM cell state too (<see cref="Quantized.LayerNormForm.Joint"/>). JSON that does not name it reads as
    /// <see cref="Quantized.LayerNormForm.Joint"/>: every model header saved before this option existed, whose layer
    /// normalization was the joint form.
    /// </summary>
    public LayerNormForm LayerNormForm { get; set; } = LayerNormForm.PerGate;

    /// <summary>
    /// Longest sequence for <see cref="RecurrentNormalization.BatchPerStep"/> statistics; later steps reuse the
    /// last step's statistics. Default 100. Training lowers it to the longest training sequence (a language model's
    /// <c>TrainingOptions.SequenceLength</c>, a classifier's longest training sequence in steps): sets past it
    /// would never see a batch, so later steps reuse the last trained set and the saved model carries no untrained
    /// statistics. The trained model's options hold the value it kept.
    /// </summary>
    public int MaxNormalizedSteps { get; set; } = 100;

    /// <summary>Deep copy.</summary>
    public QuantizedRecurrentOptions Clone()
    {
        var copy = (QuantizedRecurrentOptions)MemberwiseClone();
        copy.WeightQuantizer = WeightQuantizer.Clone();
        copy.ActivationQuantizer = ActivationQuantizer.Clone();
        copy.Slopes = Slopes.Clone();
        return copy;
    }

    /// <summary>
    /// Before a saved header fills these options: a header written before <see cref="LayerNormForm"/> existed does not
    /// name it, and its layer normalization was the joint form; a newer header names it and overrides this.
    /// </summary>
    void IJsonOnDeserializing.OnDeserializing() => LayerNormForm = LayerNormForm.Joint;
}
