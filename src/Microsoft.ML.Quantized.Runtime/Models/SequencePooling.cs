namespace Microsoft.ML.Quantized;

/// <summary>
/// How a sequence classifier turns the last recurrent layer's hidden states, one per step, into the one vector its head
/// reads (<see cref="SequenceClassifierOptions.Pooling"/>).
/// </summary>
public enum SequencePooling
{
    /// <summary>
    /// Default. The hidden state at the sequence's own last step, as in Hou et al. 2019 and HitNet (sequential MNIST):
    /// the state must carry everything the head needs to the end of the sequence.
    /// </summary>
    Last,

    /// <summary>
    /// The mean of the hidden states over the sequence's steps: every step contributes to the decision, which helps long
    /// texts whose telling words come early (a spam email's first lines), where the last state has forgotten them.
    /// </summary>
    Mean,

    /// <summary>
    /// The element-wise maximum of the hidden states over the sequence's steps: each unit reports its strongest
    /// response anywhere in the sequence (Collobert et al. 2011's max-over-time), suited to detecting a telling phrase.
    /// </summary>
    Max,
}
