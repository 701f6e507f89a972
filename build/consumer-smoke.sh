#!/usr/bin/env bash
# The packages as an app meets them: packs Microsoft.ML.Quantized (training) and Microsoft.ML.Quantized.Runtime (scoring)
# into a local feed, then for Microsoft.ML 5.0.1 and 6.0.0
# builds a fresh console app from the example in the package's README (src/Microsoft.ML.Quantized/PACKAGE.md, the
# C# block under "Train, save, load and score", compiled as written), runs it (train -> save -> load in a fresh
# MLContext -> evaluate -> PredictionEngine on a sentence with an unseen word) and checks what it prints. Then a
# scoring-only app that references only Microsoft.ML.Quantized.Runtime loads the saved zip and must print the same answer
# with no TorchSharp or libtorch file in its output folder and none loaded into its process.
# Usage: build/consumer-smoke.sh [ML.NET versions...]   (default: 5.0.1 6.0.0)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSIONS=("$@"); [[ ${#VERSIONS[@]} -gt 0 ]] || VERSIONS=(5.0.1 6.0.0)
WORK="$(mktemp -d "${TMPDIR:-/tmp}/consumer-smoke.XXXXXX")"
trap '[[ -n "${KEEP_SMOKE:-}" ]] || rm -rf "$WORK"' EXIT
# A version no cache has seen, so the app restores this build and not an earlier package of the same version.
PACKAGE_VERSION="0.1.0-smoke.$(date +%s)"
for project in Microsoft.ML.Quantized.Runtime Microsoft.ML.Quantized; do
  dotnet pack "$ROOT/src/$project/$project.csproj" -c Release -o "$WORK/feed" -p:PackageVersion="$PACKAGE_VERSION" -v quiet -nologo
done

# The example: the first ```csharp block after the "## Train, save, load and score" heading.
awk '/^## Train, save, load and score/ { section = 1 } section && /^```csharp/ { inside = 1; next } inside && /^```/ { exit } inside { print }' \
  "$ROOT/src/Microsoft.ML.Quantized/PACKAGE.md" > "$WORK/Program.cs"
[[ -s "$WORK/Program.cs" ]] || { echo "consumer-smoke: no example found in PACKAGE.md" >&2; exit 1; }

# new_app DIR NAME PACKAGE MLNET [EXTRA_PACKAGE]: a console app outside the repository (so its Directory.Build.props and
# central package versions do not apply) referencing PACKAGE from the local feed and Microsoft.ML MLNET, with warnings as
# errors, as in many production apps.
new_app() {
  local dir=$1 name=$2 package=$3 mlnet=$4 extra=${5:-}
  mkdir -p "$dir"
  printf '<configuration>\n  <packageSources>\n    <add key="smoke" value="%s" />\n  </packageSources>\n</configuration>\n' "$WORK/feed" > "$dir/nuget.config"
  cat > "$dir/$name.csproj" <<XML
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup>
    <OutputType>Exe</OutputType>
    <TargetFramework>net10.0</TargetFramework>
    <Nullable>enable</Nullable>
    <ImplicitUsings>enable</ImplicitUsings>
    <TreatWarningsAsErrors>true</TreatWarningsAsErrors>
    <ManagePackageVersionsCentrally>false</ManagePackageVersionsCentrally>
    <NoWarn>\$(NoWarn);NU1603</NoWarn>
  </PropertyGroup>
  <ItemGroup>
    <PackageReference Include="$package" Version="$PACKAGE_VERSION" />
    <PackageReference Include="Microsoft.ML" Version="$mlnet" />
    $extra
  </ItemGroup>
</Project>
XML
}

for mlnet in "${VERSIONS[@]}"; do
  app="$WORK/app-$mlnet"
  # As the package page says: the package, Microsoft.ML, and one CPU libtorch.
  new_app "$app" SmokeApp Microsoft.ML.Quantized "$mlnet" '<PackageReference Include="libtorch-cpu-linux-x64" Version="2.10.0" />'
  cp "$WORK/Program.cs" "$app/Program.cs"
  echo "=== consumer app on Microsoft.ML $mlnet ==="
  out="$(cd "$app" && OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} dotnet run -c Release 2>&1)" || { echo "$out"; echo "consumer-smoke: the app on Microsoft.ML $mlnet failed" >&2; exit 1; }
  echo "$out" | tail -3
  grep -qE '^test accuracy [0-9.]+ ?%, AUC [0-9.]+$' <<<"$out" || { echo "consumer-smoke: no evaluation line (Microsoft.ML $mlnet)" >&2; exit 1; }
  grep -qE "^'the cinematography was superb': positive = True, P = 0\.[5-9]" <<<"$out" || { echo "consumer-smoke: the unseen-word sentence was not scored positive (Microsoft.ML $mlnet)" >&2; exit 1; }
  echo "consumer-smoke: Microsoft.ML $mlnet OK"
  trained_line="$(grep -E "^'the cinematography was superb'" <<<"$out")"
  last_app="$app"
done

# A scoring-only app: the runtime package and Microsoft.ML, nothing of TorchSharp. It loads the zip the last app saved and
# scores the same sentence; its output folder holds no TorchSharp or libtorch file, and neither is loaded into the process.
score="$WORK/score-only"
new_app "$score" ScoreOnly Microsoft.ML.Quantized.Runtime "${VERSIONS[-1]}"
cat > "$score/Program.cs" <<'CS'
using Microsoft.ML;

var ml = new MLContext();
var model = ml.Model.Load(args[0], out _);
var engine = ml.Model.CreatePredictionEngine<Review, Prediction>(model);
var p = engine.Predict(new Review { Text = "the cinematography was superb" });
Console.WriteLine($"'the cinematography was superb': positive = {p.PredictedLabel}, P = {p.Probability:F3}");
bool mapped = File.ReadLines("/proc/self/maps").Any(l => l.Contains("libtorch", StringComparison.OrdinalIgnoreCase));
bool torchSharp = AppDomain.CurrentDomain.GetAssemblies().Any(a => a.GetName().Name == "TorchSharp");
Console.WriteLine($"libtorch mapped: {mapped}; TorchSharp loaded: {torchSharp}; peak working set {File.ReadLines("/proc/self/status").First(l => l.StartsWith("VmHWM", StringComparison.Ordinal))}");

public sealed class Review
{
    public string Text { get; set; } = "";
    public bool Label { get; set; }
}

public sealed class Prediction
{
    public bool PredictedLabel { get; set; }
    public float Probability { get; set; }
}
CS
echo "=== scoring-only app (Microsoft.ML.Quantized.Runtime only) ==="
(cd "$score" && dotnet build -c Release -v quiet -nologo >/dev/null) || { echo "consumer-smoke: the scoring-only app does not build" >&2; exit 1; }
if find "$score/bin" -iname '*torch*' | grep .; then echo "consumer-smoke: TorchSharp or libtorch files in the scoring-only app's output" >&2; exit 1; fi
scored="$(cd "$score" && dotnet bin/Release/net10.0/ScoreOnly.dll "$last_app/sentiment.zip" 2>&1)" || { echo "$scored"; echo "consumer-smoke: the scoring-only app failed" >&2; exit 1; }
echo "$scored"
grep -qxF "$trained_line" <<<"$scored" || { echo "consumer-smoke: the scoring-only app's answer differs from the training app's ($trained_line)" >&2; exit 1; }
grep -q '^libtorch mapped: False; TorchSharp loaded: False' <<<"$scored" || { echo "consumer-smoke: TorchSharp or libtorch was loaded while scoring" >&2; exit 1; }
echo "consumer-smoke: scoring-only app OK (no TorchSharp or libtorch in its output or its process)"
# A zip saved before the split (float weights only) names the training assembly as its loader, which packs it on load:
# the scoring-only app must refuse it, naming that assembly (ML.NET loads the assembly a model names).
old="$ROOT/test/Microsoft.ML.Quantized.Tests/TestData/format-v1/binary-gru-twn-batchperstep.zip"
refused="$(cd "$score" && dotnet bin/Release/net10.0/ScoreOnly.dll "$old" 2>&1)" && { echo "$refused"; echo "consumer-smoke: the scoring-only app scored a float-only model" >&2; exit 1; }
grep -q "Could not load file or assembly 'Microsoft.ML.Quantized," <<<"$refused" || { echo "$refused" | head -20; echo "consumer-smoke: an old-format model was not refused naming the training assembly" >&2; exit 1; }
echo "consumer-smoke: scoring-only app refuses an old-format model, naming the training assembly it needs"
