namespace Microsoft.ML.Quantized;

/// <summary>The recurrent cell.</summary>
public enum RecurrentCellKind
{
    /// <summary>Long short-term memory (input, forget, cell and output gates; PyTorch gate order i, f, g, o).</summary>
    Lstm = 0,
    /// <summary>Gated recurrent unit (reset, update, new; PyTorch convention).</summary>
    Gru,
}
