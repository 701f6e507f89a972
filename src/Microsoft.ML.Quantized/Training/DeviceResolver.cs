using TorchSharp;

namespace Microsoft.ML.Quantized;

/// <summary>Turns the Device option into a torch device, with a clear error when CUDA is asked for but absent.</summary>
internal static class DeviceResolver
{
    public static torch.Device Resolve(string? device)
    {
        var name = string.IsNullOrWhiteSpace(device) ? "cpu" : device.Trim().ToLowerInvariant();
        if (name == "cpu") return torch.CPU;
        if (name == "cuda" || name.StartsWith("cuda:", StringComparison.Ordinal))
        {
            if (!torch.cuda.is_available())
                throw new ArgumentException($"Device '{device}' was requested but CUDA is not available: reference the TorchSharp-cuda-linux (or -windows) package in the application and run on a machine with an NVIDIA GPU, or use Device = \"cpu\".", "Device");
            return torch.device(name);
        }
        throw new ArgumentException($"Device '{device}' is not recognized: use \"cpu\", \"cuda\" or \"cuda:N\".", "Device");
    }
}
