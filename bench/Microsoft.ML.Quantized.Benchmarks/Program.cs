using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Running;

// dotnet run -c Release --project bench/Microsoft.ML.Quantized.Benchmarks -- --filter '*'
// (BenchmarkDotNet's own options: --filter '*MatVec*', --job short, --inProcess, --list flat, --artifacts DIR, ...)
// Reports go to BenchmarkDotNet.Artifacts beside the built program (under bin/, not into the repository) unless --artifacts says otherwise.
var config = DefaultConfig.Instance.WithArtifactsPath(Path.Combine(AppContext.BaseDirectory, "BenchmarkDotNet.Artifacts"));
BenchmarkSwitcher.FromAssembly(typeof(Microsoft.ML.Quantized.Benchmarks.MatVecBenchmarks).Assembly).Run(args, config);
