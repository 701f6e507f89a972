namespace Microsoft.ML.Quantized;

/// <summary>A model file is damaged, truncated, of another kind, or from an incompatible library version.</summary>
public sealed class ModelFormatException : FormatException
{
    /// <summary>Creates the exception with a message that says what is wrong and what to do.</summary>
    public ModelFormatException(string message, Exception? inner = null) : base(message, inner) { }
}
