using System.Globalization;

namespace Microsoft.ML.Quantized.Samples.Reproduction;

/// <summary>
/// This process's resident memory as Linux reports it (<c>/proc/self/status</c>): the current resident set and its peak
/// since start or since the last <see cref="ResetPeak"/> (writing 5 to <c>/proc/self/clear_refs</c>).
/// </summary>
internal static class ResidentMemory
{
    private const string Status = "/proc/self/status";

    /// <summary>Resident bytes now (VmRSS).</summary>
    public static long CurrentBytes => Read("VmRSS:");

    /// <summary>Largest resident bytes since start or since the last <see cref="ResetPeak"/> (VmHWM).</summary>
    public static long PeakBytes => Read("VmHWM:");

    /// <summary>True where <see cref="ResetPeak"/> works (Linux with <c>/proc/self/clear_refs</c> writable); it resets the peak once to find out.</summary>
    public static bool CanResetPeak()
    {
        try
        {
            ResetPeak();
            _ = PeakBytes;
            return true;
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>
    /// Sets the peak to the current resident set, after handing the C heap's free memory back to the kernel (glibc's
    /// <c>malloc_trim</c>, where there is one): memory an earlier run freed but the allocator kept would otherwise be reused
    /// without raising the resident set, and the next peak would read low.
    /// </summary>
    /// <exception cref="IOException">The kernel does not offer it (not Linux, or <c>/proc/self/clear_refs</c> not writable).</exception>
    public static void ResetPeak()
    {
        try
        {
            MallocTrim(0);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            // Not glibc: nothing to trim with; the peak may then read low after a larger run.
        }
        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"Measuring peak memory needs Linux's /proc/self/clear_refs to reset the peak resident set ({e.Message}); run on Linux with /proc writable.", e);
        }
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "malloc_trim")]
    private static extern int MallocTrim(nuint pad);

    private static long Read(string key)
    {
        var line = File.Exists(Status) ? File.ReadLines(Status).FirstOrDefault(l => l.StartsWith(key, StringComparison.Ordinal)) : null;
        var parts = line?.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return parts is { Length: 3 } && parts[2] == "kB" && long.TryParse(parts[1], NumberStyles.Integer, CultureInfo.InvariantCulture, out var kb)
            ? kb * 1024
            : throw new IOException($"Measuring memory needs Linux's {Status} with a '{key}' line in kB.");
    }
}
