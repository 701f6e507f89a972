#!/usr/bin/env bash
# Benchmarks (not tests): prepares the Brown split if needed, then runs the word-LM benchmark.
# Extra arguments go to the bench command, e.g. build/bench.sh --epochs 2 --configs none,twn
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f data/brown/brown.train.txt ] || bash build/fetch-data.sh --only brown
dotnet run --project src/Microsoft.ML.Quantized.Samples -c Release -- bench --data data/brown "$@"
