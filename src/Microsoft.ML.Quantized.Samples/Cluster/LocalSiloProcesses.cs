using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.ML.Quantized.Samples.Commands;
using Orleans.Runtime;

namespace Microsoft.ML.Quantized.Samples.Cluster;

/// <summary>
/// N local Orleans worker silos, each a child process of this program running the <c>worker</c> command, clustered on
/// localhost (worker 0 is the primary silo), and a client connected to them once all N are active. Worker logs go to
/// <c>artifacts/workers/worker-N.log</c>. Disposing stops the client and kills the workers.
/// </summary>
internal sealed class LocalSiloProcesses : IAsyncDisposable
{
    /// <summary>Silo port of worker 0 (worker N listens on this + N); the primary silo's endpoint.</summary>
    public const int BaseSiloPort = 11111;

    /// <summary>Gateway port of worker 0 (worker N: this + N).</summary>
    public const int BaseGatewayPort = 30000;

    private readonly Process[] _workers;
    private readonly IHost _client;

    private LocalSiloProcesses(Process[] workers, IHost client)
    {
        _workers = workers;
        _client = client;
    }

    /// <summary>The cluster client.</summary>
    public IClusterClient Client => (IClusterClient)_client.Services.GetService(typeof(IClusterClient))!;

    /// <summary>
    /// Starts <paramref name="count"/> workers for <paramref name="settings"/>' task, each with <paramref name="threads"/>
    /// libtorch threads, and connects a client; returns when every silo is active (at most 3 minutes).
    /// </summary>
    public static async Task<LocalSiloProcesses> StartAsync(int count, SweepCommand.SweepTaskSettings settings, CancellationToken cancellationToken, int threads = 1)
    {
        Directory.CreateDirectory(Path.Combine("artifacts", "workers"));
        var workers = Enumerable.Range(0, count).Select(i => StartWorker(i, settings, threads)).ToArray();
        IHost? client = null;
        try
        {
            int attempts = 0;
            client = Host.CreateDefaultBuilder()
                .ConfigureLogging(logging => logging.SetMinimumLevel(LogLevel.Warning).AddFilter("Orleans", LogLevel.Error))
                .UseOrleansClient(c => c
                    .UseLocalhostClustering(Enumerable.Range(0, count).Select(i => BaseGatewayPort + i).ToArray())
                    .UseConnectionRetryFilter(async (_, token) =>
                    {
                        await Task.Delay(TimeSpan.FromSeconds(1), token);
                        return ++attempts < 180 && workers.All(w => !w.HasExited);
                    }))
                .Build();
            await client.StartAsync(cancellationToken);
            var cluster = new LocalSiloProcesses(workers, client);
            await cluster.WaitForSilosAsync(count, cancellationToken);
            return cluster;
        }
        catch
        {
            client?.Dispose();
            foreach (var w in workers) Kill(w);
            throw;
        }
    }

    /// <summary>One line per worker: its process id and ports.</summary>
    public IEnumerable<string> Describe() =>
        _workers.Select((w, i) => string.Create(CultureInfo.InvariantCulture, $"worker {i} (pid {w.Id}, silo port {BaseSiloPort + i}, gateway {BaseGatewayPort + i})"));

    /// <summary>Kills worker <paramref name="index"/>'s process (its silo dies without leaving the cluster).</summary>
    public void Kill(int index) => Kill(_workers[index]);

    public async ValueTask DisposeAsync()
    {
        try
        {
            await _client.StopAsync(TimeSpan.FromSeconds(5));
        }
        catch (Exception e) when (e is OperationCanceledException or TimeoutException or OrleansException)
        {
        }
        _client.Dispose();
        foreach (var w in _workers) Kill(w);
    }

    private async Task WaitForSilosAsync(int count, CancellationToken cancellationToken)
    {
        var management = Client.GetGrain<IManagementGrain>(0);
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            var hosts = await management.GetHosts(onlyActive: true);
            if (hosts.Count >= count) return;
            if (deadline.Elapsed > TimeSpan.FromMinutes(3) || _workers.Any(w => w.HasExited))
                throw new InvalidOperationException(
                    $"Only {hosts.Count} of {count} worker silos became active; see artifacts/workers/worker-N.log" +
                    (_workers.FirstOrDefault(w => w.HasExited) is { } dead ? $" (worker pid {dead.Id} exited with code {dead.ExitCode})." : "."));
            await Task.Delay(TimeSpan.FromMilliseconds(500), cancellationToken);
        }
    }

    private static Process StartWorker(int index, SweepCommand.SweepTaskSettings settings, int threads)
    {
        var start = new ProcessStartInfo(Environment.ProcessPath ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        // Under `dotnet Samples.dll` the process is the dotnet host: name the program first.
        if (Path.GetFileNameWithoutExtension(start.FileName) == "dotnet") start.ArgumentList.Add(typeof(LocalSiloProcesses).Assembly.Location);
        foreach (var a in new[] { "worker", "--index", index.ToString(CultureInfo.InvariantCulture), "--threads", threads.ToString(CultureInfo.InvariantCulture) }.Concat(settings.Arguments()))
            start.ArgumentList.Add(a);
        var process = Process.Start(start) ?? throw new InvalidOperationException($"Could not start worker {index} ({start.FileName}).");
        var log = new StreamWriter(Path.Combine("artifacts", "workers", $"worker-{index}.log")) { AutoFlush = true };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (log) log.WriteLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (log) log.WriteLine(e.Data); };
        process.Exited += (_, _) => { lock (log) log.Dispose(); };
        process.EnableRaisingEvents = true;
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    private static void Kill(Process process)
    {
        try
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
        }
    }
}
