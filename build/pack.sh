#!/usr/bin/env bash
# Builds the NuGet packages into artifacts/: Microsoft.ML.Quantized.Runtime (scoring, no TorchSharp) and
# Microsoft.ML.Quantized (training, with the buildTransitive libtorch load fix), which depends on it, and
# Microsoft.ML.Quantized.Orleans (sweeps on an Orleans cluster), which depends on the training package.
set -euo pipefail
cd "$(dirname "$0")/.."
for project in Microsoft.ML.Quantized.Runtime Microsoft.ML.Quantized Microsoft.ML.Quantized.Orleans; do
  dotnet pack "src/$project/$project.csproj" -c Release -o artifacts
done
