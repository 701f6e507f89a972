using Microsoft.ML.Runtime;

namespace Microsoft.ML.Quantized;

/// <summary>
/// What every ML.NET entry point that trains takes from its environment: the seed (the options' own, else the
/// MLContext's, else one drawn from the host as ML.NET's trainers do) and the device (MLContext.GpuDeviceId).
/// </summary>
internal static class HostTraining
{
    /// <summary><paramref name="seed"/>, else the MLContext's seed, else a number drawn from <paramref name="host"/>.</summary>
    public static int Seed(IHostEnvironment env, IHost host, int? seed) =>
        seed ?? (env is IHostEnvironmentInternal { Seed: int contextSeed } ? contextSeed : host.Rand.Next());

    /// <summary>
    /// <paramref name="device"/>, except that a "cpu" device becomes <c>cuda:N</c> when MLContext.GpuDeviceId asks for
    /// GPU N and libtorch has CUDA; without CUDA it stays on the CPU if MLContext.FallbackToCpu allows, else it is an error.
    /// </summary>
    public static string Device(IHostEnvironment env, IHost host, string device)
    {
        if (!string.Equals(device, "cpu", StringComparison.OrdinalIgnoreCase) || env is not IHostEnvironmentInternal { GpuDeviceId: int id } context) return device;
        if (TorchSharp.torch.cuda.is_available()) return $"cuda:{id}";
        if (context.FallbackToCpu) return device;
        throw host.Except($"MLContext.GpuDeviceId is {id} but CUDA is not available to TorchSharp: reference TorchSharp-cuda-linux (or -windows), or set MLContext.FallbackToCpu = true.");
    }
}
