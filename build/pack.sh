#!/usr/bin/env bash
# Builds the NuGet packages into artifacts/: Microsoft.ML.Quantized.Runtime (scoring, no TorchSharp) and
# Microsoft.ML.Quantized (training, with the buildTransitive libtorch load fix), which depends on it.
set -euo pipefail
cd "$(dirname "$0")/.."
for project in Microsoft.ML.Quantized.Runtime Microsoft.ML.Quantized; do
  dotnet pack "src/$project/$project.csproj" -c Release -o artifacts
done
