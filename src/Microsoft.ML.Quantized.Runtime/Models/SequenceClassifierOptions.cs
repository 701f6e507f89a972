namespace Microsoft.ML.Quantized;

/// <summary>
/// A recurrent sequence classifier: (token embedding | float frames) -> quantized recurrent stack -> the last
/// layer's hidden states pooled over the sequence's steps (<see cref="Pooling"/>; by default the state at the sequence's own
/// last step) -> dropout -> linear head -> one logit per class,
/// turned into probabilities by softmax. Binary problems use two classes (softmax over two logits, which is
/// the sigmoid of their difference): <c>Probabilities[1]</c> is the probability of the positive class.
/// </summary>
/// <remarks>
/// Which input the model reads is decided by the <c>Train</c> overload: token ids (<c>int[][]</c>) go through an
/// embedding of <see cref="VocabularySize"/> x <see cref="EmbeddingSize"/>; float sequences (<c>float[][]</c>) are
/// read as consecutive frames of <see cref="FrameSize"/> values, one frame per time step (MNIST's 784 pixels are
/// 28 steps of 28 with <c>FrameSize = 28</c>, or 784 steps of 1 with <c>FrameSize = 1</c>).
/// Embedding and head stay float by default, as in Hou et al. 2019 and HitNet.
/// </remarks>
public sealed class SequenceClassifierOptions
{
    /// <summary>The recurrent stack (cell, sizes, quantizers, slopes, normalization).</summary>
    public QuantizedRecurrentOptions Recurrent { get; set; } = new();

    /// <summary>Number of classes; labels are in [0, ClassCount). At least 2 (binary = 2). Default 2.</summary>
    public int ClassCount { get; set; } = 2;

    /// <summary>
    /// Token inputs: number of token ids (each id in [0, VocabularySize)). 0 (default) takes the largest id in
    /// the training and validation data + 1. Ignored for float inputs.
    /// </summary>
    public int VocabularySize { get; set; }

    /// <summary>Token inputs: embedding width; 0 (default) uses <see cref="QuantizedRecurrentOptions.HiddenSize"/>.</summary>
    public int EmbeddingSize { get; set; }

    /// <summary>
    /// Float inputs: values per time step. Every float sequence's length must be a multiple of it. Default 1
    /// (one value per step). Ignored for token inputs.
    /// </summary>
    public int FrameSize { get; set; } = 1;

    /// <summary>Quantize the embedding and the head weights with the recurrent weight quantizer. Default false.</summary>
    public bool QuantizeEmbeddingAndHead { get; set; }

    /// <summary>
    /// With <see cref="QuantizeEmbeddingAndHead"/>: the embedding's own quantizer, e.g. 1-bit BWN for a large
    /// vocabulary whose table dominates the size while the recurrent weights stay ternary. Null (default) uses
    /// <see cref="QuantizedRecurrentOptions.WeightQuantizer"/>; the head always uses that one.
    /// </summary>
    public QuantizerOptions? EmbeddingQuantizer { get; set; }

    /// <summary>
    /// How the last layer's hidden states become the head's input: the state at the last step (<see cref="SequencePooling.Last"/>,
    /// default), or their mean or element-wise maximum over the sequence's steps (padding excluded).
    /// </summary>
    public SequencePooling Pooling { get; set; } = SequencePooling.Last;

    /// <summary>Dropout on the pooled hidden state, before the head (training only), in [0, 1). Default 0.</summary>
    public double Dropout { get; set; }

    /// <summary>
    /// Standard deviation of the Gaussian noise that training draws for every sequence's initial hidden state (each
    /// layer's; the LSTM cell state starts at zero), as Cooijmans et al. 2016 prime it (<c>--noise 0.1</c> in their
    /// sequential-MNIST run). It is what recurrent batch normalization needs on sequences that start alike: where every
    /// sequence of a batch has the same input for many steps (MNIST's blank first rows read pixel by pixel), a zero start
    /// gives every sequence the same hidden state, the batch variance there is 0, and each such step multiplies the
    /// gradient by up to gain / sqrt(1e-5) until it overflows. Evaluation and scoring start from zeros (the noise's mean).
    /// In [0, 1e3]; default 0 (every sequence starts from zeros in training too).
    /// </summary>
    // Written to a model's header only when set, so a model trained without it reads with library versions from before it.
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingDefault)]
    public double InitialStateNoise { get; set; }

    /// <summary>Deep copy.</summary>
    public SequenceClassifierOptions Clone()
    {
        var copy = (SequenceClassifierOptions)MemberwiseClone();
        copy.Recurrent = Recurrent.Clone();
        copy.EmbeddingQuantizer = EmbeddingQuantizer?.Clone();
        return copy;
    }
}
