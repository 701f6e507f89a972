using System.Runtime.InteropServices;
using TorchSharp;

namespace Microsoft.ML.Quantized;

/// <summary>
/// Runs the sequence functions' managed kernels in parallel on libtorch's own intra-op threads where libtorch uses GNU
/// OpenMP (its Linux builds ship libgomp): the work goes to <c>GOMP_parallel</c>, the entry point of an
/// <c>omp parallel</c> region, so the same threads that run libtorch's operations run ours. Elsewhere .NET's
/// <see cref="Parallel.For(int, int, ParallelOptions, Action{int})"/>.
/// </summary>
/// <remarks>
/// <para>Why: after each of its parallel operations libgomp's workers spin for a while before they sleep. .NET's pool threads
/// started in that window share a core with a spinning worker, and a kernel split in halves waits for the slower half: on the
/// 2-core AMD EPYC VM the quickstart's layer (TWN + layer norm, forward and backward) took about 47 ms with libgomp's workers
/// told not to spin (<c>OMP_WAIT_POLICY=PASSIVE</c>, which slows libtorch's own operations) and about 62 ms without
/// (docs/benchmarks.md, cell loop). On libgomp's threads there is no second set of threads to compete.</para>
/// <para>Parts are handed out one at a time to whichever thread comes free, so a part's index, not its thread, decides what
/// it computes (results do not depend on the scheduling). An exception in a part is rethrown on the calling thread after the
/// region ends (it cannot cross the native frames).</para>
/// </remarks>
internal static unsafe class IntraOpThreads
{
    private static readonly delegate* unmanaged<delegate* unmanaged<nint, void>, nint, uint, uint, void> OpenMpParallel = FindOpenMpParallel();

    /// <summary>True when the parts run on libtorch's OpenMP threads (false: on .NET's thread pool).</summary>
    public static bool SharesLibTorchThreads => OpenMpParallel is not null;

    /// <summary>
    /// Runs <paramref name="body"/>(part) for every part in [0, <paramref name="parts"/>) on up to
    /// <paramref name="threads"/> threads (the calling thread among them) and returns when all have run; one thread runs them
    /// in order on the calling thread.
    /// </summary>
    public static void For(int parts, int threads, Action<int> body)
    {
        threads = Math.Min(threads, parts);
        if (threads <= 1)
        {
            for (int part = 0; part < parts; part++) body(part);
            return;
        }
        if (OpenMpParallel is null)
        {
            Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = threads }, body);
            return;
        }
        var region = new Region(body, parts);
        var handle = GCHandle.Alloc(region);
        try
        {
            OpenMpParallel(&RunParts, GCHandle.ToIntPtr(handle), (uint)threads, 0);
        }
        finally { handle.Free(); }
        if (region.Failure is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(region.Failure);
    }

    /// <summary>What one parallel region runs: the body, the parts, the next part to hand out and the first failure.</summary>
    private sealed class Region(Action<int> body, int parts)
    {
        public readonly Action<int> Body = body;
        public readonly int Parts = parts;
        public int Next;
        public Exception? Failure;
    }

    /// <summary>Each thread of the region: takes the next part until none is left.</summary>
    [UnmanagedCallersOnly]
    private static void RunParts(nint data)
    {
        var region = (Region)GCHandle.FromIntPtr(data).Target!;
        try
        {
            for (int part = Interlocked.Increment(ref region.Next) - 1; part < region.Parts; part = Interlocked.Increment(ref region.Next) - 1)
                region.Body(part);
        }
        catch (Exception e)
        {
            Interlocked.CompareExchange(ref region.Failure, e, null);
        }
    }

    /// <summary>
    /// <c>GOMP_parallel</c> of the libgomp that libtorch loaded (the one beside <c>libtorch_cpu</c>), or null where there is none
    /// (not Linux, another OpenMP, libtorch not loaded).
    /// </summary>
    private static delegate* unmanaged<delegate* unmanaged<nint, void>, nint, uint, uint, void> FindOpenMpParallel()
    {
        try
        {
            if (!OperatingSystem.IsLinux()) return null;
            _ = torch.get_num_threads(); // loads libtorch (and its libgomp) if nothing has yet
            var mapped = File.ReadLines("/proc/self/maps").Select(line => line.Split(' ', StringSplitOptions.RemoveEmptyEntries))
                .Where(fields => fields.Length >= 6).Select(fields => fields[5]).Distinct().ToList();
            var torchDirectory = mapped.Where(path => Path.GetFileName(path).StartsWith("libtorch_cpu", StringComparison.Ordinal))
                .Select(Path.GetDirectoryName).FirstOrDefault();
            var openMp = mapped.FirstOrDefault(path => Path.GetFileName(path).StartsWith("libgomp", StringComparison.Ordinal)
                && Path.GetDirectoryName(path) == torchDirectory);
            if (torchDirectory is null || openMp is null) return null;
            var library = NativeLibrary.Load(openMp);
            return NativeLibrary.TryGetExport(library, "GOMP_parallel", out var entry)
                ? (delegate* unmanaged<delegate* unmanaged<nint, void>, nint, uint, uint, void>)entry
                : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or DllNotFoundException or BadImageFormatException)
        {
            return null;
        }
    }
}
