using BenchmarkDotNet.Running;

// dotnet run -c Release --project bench/Microsoft.ML.Quantized.Benchmarks -- --filter '*'
// (BenchmarkDotNet's own options: --filter '*MatVec*', --job short, --inProcess, --list flat, ...)
BenchmarkSwitcher.FromAssembly(typeof(Microsoft.ML.Quantized.Benchmarks.MatVecBenchmarks).Assembly).Run(args);
