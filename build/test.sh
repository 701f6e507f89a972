#!/usr/bin/env bash
# The README's test command: restore, build and run the whole MSTest suite (CPU libtorch, no GPU needed).
set -euo pipefail
cd "$(dirname "$0")/.."
dotnet test test/Microsoft.ML.Quantized.Tests/Microsoft.ML.Quantized.Tests.csproj -c Release --logger "console;verbosity=normal" "$@"
