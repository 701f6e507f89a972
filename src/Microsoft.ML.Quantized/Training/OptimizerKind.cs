namespace Microsoft.ML.Quantized;

/// <summary>The optimizer.</summary>
public enum OptimizerKind
{
    /// <summary>Plain SGD with the PTB recipe's decay on plateau (Zaremba et al.; PyTorch word_language_model).</summary>
    Sgd = 0,
    /// <summary>Adam (Kingma and Ba 2015), as used for the quantized LSTMs of Hou et al. 2019.</summary>
    Adam,
}
