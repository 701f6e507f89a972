using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized;

/// <summary>The memory of contiguous CPU tensors as spans, for the sequence functions' managed element-wise work.</summary>
internal static class TensorSpans
{
    /// <summary>True for tensors the sequence functions can run on: float32 or float64 on the CPU.</summary>
    public static bool Supports(Tensor tensor) =>
        tensor.device_type == DeviceType.CPU && (tensor.dtype == ScalarType.Float32 || tensor.dtype == ScalarType.Float64);

    /// <summary>The memory of a contiguous CPU tensor as a span of its element type.</summary>
    public static Span<T> Of<T>(Tensor tensor) where T : unmanaged => MemoryMarshal.Cast<byte, T>(tensor.bytes);

    /// <summary><see cref="Of{T}"/>, or the empty span for a tensor that is not there (null).</summary>
    public static Span<T> OfOptional<T>(Tensor? tensor) where T : unmanaged => tensor is null ? default : Of<T>(tensor);
}
