using System.CommandLine;
using Microsoft.ML.Quantized.Samples;
using Microsoft.ML.Quantized.Samples.Commands;

NativeAllocator.KeepLargeBuffersInHeap();

var root = new RootCommand(
    "Microsoft.ML.Quantized samples. With no command: the quickstart (a float and a ternary character LSTM on Moby Dick).");
QuickstartCommand.AddOptionsTo(root);
root.Subcommands.Add(BenchmarkCommand.Create());
root.Subcommands.Add(PrepareBrownCommand.Create());
root.Subcommands.Add(KureCommand.Create());
root.Subcommands.Add(SmnistCommand.Create());
root.Subcommands.Add(SpamCommand.Create());
root.Subcommands.Add(SpamHeldOutCommand.Create());
root.Subcommands.Add(SweepCommand.Create());
root.Subcommands.Add(SweepBenchmarkCommand.Create());
root.Subcommands.Add(WorkerCommand.Create());
root.Subcommands.Add(SweepClusterBenchmarkCommand.Create());
root.Subcommands.Add(LmCommand.Create());
root.Subcommands.Add(ScoreCommand.Create());
root.Subcommands.Add(EngineBenchCommand.Create());
root.Subcommands.Add(ConvexCommand.Create());
root.Subcommands.Add(CellLoopBenchCommand.Create());
root.Subcommands.Add(LayerBenchCommand.Create());
root.Subcommands.Add(StudyCommand.Create());
root.Subcommands.Add(SignFlipCommand.Create());
root.Subcommands.Add(SharedBatchNormCommand.Create());
root.Subcommands.Add(BatchNormRecalibrationCommand.Create());
root.Subcommands.Add(MemoryCommand.Create());
root.Subcommands.Add(ZeroStateCommand.Create());
try
{
    return await root.Parse(args).InvokeAsync(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
}
catch (Exception e) when (e is ArgumentException or IOException or InvalidDataException)
{
    // Bad options or missing/damaged input: one line naming what was wrong and what to do, no stack trace.
    Console.Error.WriteLine($"error: {e.Message}");
    return 1;
}
