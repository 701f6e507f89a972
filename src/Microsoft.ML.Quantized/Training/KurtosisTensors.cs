namespace Microsoft.ML.Quantized;

/// <summary>Which weight tensors the KURE kurtosis term regularizes (<see cref="KureOptions.Tensors"/>); flags combine.</summary>
[Flags]
public enum KurtosisTensors
{
    /// <summary>No tensor (the term is then zero).</summary>
    None = 0,

    /// <summary>The recurrent weight matrices: <c>weight_ih</c> and <c>weight_hh</c> of every layer (the default).</summary>
    Recurrent = 1,

    /// <summary>The embedding table (language models).</summary>
    Embedding = 2,

    /// <summary>The decoder or classifier head weight matrix.</summary>
    Decoder = 4,

    /// <summary>Every weight matrix.</summary>
    All = Recurrent | Embedding | Decoder,
}
