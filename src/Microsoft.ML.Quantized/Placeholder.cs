namespace Microsoft.ML.Quantized;
