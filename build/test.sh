#!/usr/bin/env bash
# The README's test command: restore, build and run the whole MSTest suite (CPU libtorch, no GPU needed), once on each
# supported ML.NET: the library is built against Microsoft.ML 5.0.1 and the tests run it on 5.0.1 and on 6.0.0, as an
# app on either would. Extra arguments go to both `dotnet test` runs (e.g. --filter ...).
set -euo pipefail
cd "$(dirname "$0")/.."
for mlnet in 5.0.1 6.0.0; do
  echo "=== Tests on Microsoft.ML $mlnet ==="
  QUANTIZED_EXPECTED_MLNET=$mlnet dotnet test test/Microsoft.ML.Quantized.Tests/Microsoft.ML.Quantized.Tests.csproj -c Release \
    -p:MicrosoftMLTestVersion=$mlnet --logger "console;verbosity=normal" "$@"
done
