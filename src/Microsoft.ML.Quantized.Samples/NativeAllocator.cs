using System.Runtime.InteropServices;

namespace Microsoft.ML.Quantized.Samples;

/// <summary>
/// glibc's allocator settings for training: libtorch's fused float LSTM (oneDNN) allocates large buffers on every call, which
/// glibc by default serves with fresh <c>mmap</c>s that page-fault on first touch. Raising the mmap threshold to 256 MB and the
/// trim threshold to 512 MB keeps them in the heap (the same as starting the process with <c>MALLOC_MMAP_THRESHOLD_</c> and
/// <c>MALLOC_TRIM_THRESHOLD_</c>); measurements in README and docs/benchmarks.md.
/// </summary>
internal static class NativeAllocator
{
    private const int TrimThreshold = -1; // M_TRIM_THRESHOLD
    private const int MmapThreshold = -3; // M_MMAP_THRESHOLD

    /// <summary>
    /// Applies the settings on Linux with glibc unless the environment already sets either threshold (then the environment's
    /// values stand). Elsewhere, or where <c>mallopt</c> is missing, does nothing. Returns true when it changed them.
    /// </summary>
    public static bool KeepLargeBuffersInHeap()
    {
        if (!OperatingSystem.IsLinux()
            || Environment.GetEnvironmentVariable("MALLOC_MMAP_THRESHOLD_") is not null
            || Environment.GetEnvironmentVariable("MALLOC_TRIM_THRESHOLD_") is not null)
            return false;
        try
        {
            return mallopt(MmapThreshold, 256 << 20) == 1 & mallopt(TrimThreshold, 512 << 20) == 1;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
    }

    [DllImport("libc", EntryPoint = "mallopt")]
    private static extern int mallopt(int parameter, int value);
}
