#!/usr/bin/env bash
# Builds the NuGet package (with the buildTransitive libtorch load fix) into artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
dotnet pack src/Microsoft.ML.Quantized/Microsoft.ML.Quantized.csproj -c Release -o artifacts
