using System.CommandLine;
using System.Net;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.ML.Quantized.Orleans;
using Microsoft.ML.Quantized.Samples.Cluster;

namespace Microsoft.ML.Quantized.Samples.Commands;

/// <summary>
/// An Orleans worker silo for sweeps on localhost: registers the sweep task's trial runner as the workload named after the
/// task (reading its data from the same place as <c>sweep</c> does) and trains the trials the cluster sends it until it is
/// stopped. Worker N listens on silo port 11111 + N and gateway port 30000 + N; worker 0 is the primary silo.
/// <c>sweep --workers N</c> starts N of them; start them by hand (and a sweep with a client) to use other machines'
/// cores, after changing the clustering (see the README).
/// </summary>
internal static class WorkerCommand
{
    public static System.CommandLine.Command Create()
    {
        var (task, data, trainCount, validCount, steps) = SweepCommand.TaskOptions();
        var index = new Option<int>("--index") { Description = "This worker's number N: silo port 11111 + N, gateway port 30000 + N; worker 0 is the primary silo.", DefaultValueFactory = _ => 0 };
        var threads = new Option<int>("--threads") { Description = "libtorch threads of this worker.", DefaultValueFactory = _ => 1 };
        var command = new System.CommandLine.Command("worker", "An Orleans worker silo that trains sweep trials (see sweep --workers).")
        {
            task, data, trainCount, validCount, steps, index, threads,
        };
        command.SetAction(async (parse, token) =>
        {
            int n = parse.GetValue(index);
            if (n < 0) throw new ArgumentException($"--index must be 0 or more; got {n}.");
            TorchSharp.torch.set_num_threads(Math.Max(1, parse.GetValue(threads)));
            var settings = new SweepCommand.SweepTaskSettings(parse.GetValue(task)!.ToLowerInvariant(), parse.GetValue(data)!, parse.GetValue(trainCount), parse.GetValue(validCount), parse.GetValue(steps));
            using var host = Host.CreateDefaultBuilder()
                .ConfigureLogging(logging => logging.SetMinimumLevel(LogLevel.Warning).AddFilter("Microsoft.ML.Quantized", LogLevel.Information))
                .UseOrleans(silo => silo
                    .UseLocalhostClustering(LocalSiloProcesses.BaseSiloPort + n, LocalSiloProcesses.BaseGatewayPort + n,
                        new IPEndPoint(IPAddress.Loopback, LocalSiloProcesses.BaseSiloPort))
                    .AddQuantizedSweepWorker(workloads => workloads.Add(settings.Task, _ => settings.Load().Runner)))
                .Build();
            await host.RunAsync(token);
            return 0;
        });
        return command;
    }
}
