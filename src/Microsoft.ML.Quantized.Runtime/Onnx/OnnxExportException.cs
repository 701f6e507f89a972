namespace Microsoft.ML.Quantized;

/// <summary>
/// Thrown when a packed model cannot be exported to ONNX without scoring differently from this library's engine; the
/// message names the layer, the setting that prevents the export and what to change.
/// </summary>
public sealed class OnnxExportException : NotSupportedException
{
    /// <summary>Creates the exception with its message.</summary>
    public OnnxExportException(string message) : base(message) { }
}
