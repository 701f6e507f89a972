#!/usr/bin/env bash
# The package as an app meets it: packs Microsoft.ML.Quantized into a local feed, then for Microsoft.ML 5.0.1 and 6.0.0
# builds a fresh console app from the example in the package's README (src/Microsoft.ML.Quantized/PACKAGE.md, the
# C# block under "Train, save, load and score", compiled as written), runs it (train -> save -> load in a fresh
# MLContext -> evaluate -> PredictionEngine on a sentence with an unseen word) and checks what it prints.
# Usage: build/consumer-smoke.sh [ML.NET versions...]   (default: 5.0.1 6.0.0)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSIONS=("$@"); [[ ${#VERSIONS[@]} -gt 0 ]] || VERSIONS=(5.0.1 6.0.0)
WORK="$(mktemp -d "${TMPDIR:-/tmp}/consumer-smoke.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
# A version no cache has seen, so the app restores this build and not an earlier package of the same version.
PACKAGE_VERSION="0.1.0-smoke.$(date +%s)"
dotnet pack "$ROOT/src/Microsoft.ML.Quantized/Microsoft.ML.Quantized.csproj" -c Release -o "$WORK/feed" -p:PackageVersion="$PACKAGE_VERSION" -v quiet -nologo

# The example: the first ```csharp block after the "## Train, save, load and score" heading.
awk '/^## Train, save, load and score/ { section = 1 } section && /^```csharp/ { inside = 1; next } inside && /^```/ { exit } inside { print }' \
  "$ROOT/src/Microsoft.ML.Quantized/PACKAGE.md" > "$WORK/Program.cs"
[[ -s "$WORK/Program.cs" ]] || { echo "consumer-smoke: no example found in PACKAGE.md" >&2; exit 1; }

for mlnet in "${VERSIONS[@]}"; do
  app="$WORK/app-$mlnet"
  mkdir -p "$app"
  cp "$WORK/Program.cs" "$app/Program.cs"
  cat > "$app/nuget.config" <<XML
<configuration>
  <packageSources>
    <add key="smoke" value="$WORK/feed" />
  </packageSources>
</configuration>
XML
  # As the package page says: the package, Microsoft.ML, and one CPU libtorch. Warnings are errors, as in many production apps.
  cat > "$app/SmokeApp.csproj" <<XML
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
    <PackageReference Include="Microsoft.ML.Quantized" Version="$PACKAGE_VERSION" />
    <PackageReference Include="Microsoft.ML" Version="$mlnet" />
    <PackageReference Include="libtorch-cpu-linux-x64" Version="2.10.0" />
  </ItemGroup>
</Project>
XML
  # Outside the repository, so its Directory.Build.props and central package versions do not apply.
  echo "=== consumer app on Microsoft.ML $mlnet ==="
  out="$(cd "$app" && OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} dotnet run -c Release 2>&1)" || { echo "$out"; echo "consumer-smoke: the app on Microsoft.ML $mlnet failed" >&2; exit 1; }
  echo "$out" | tail -3
  grep -qE '^test accuracy [0-9.]+ ?%, AUC [0-9.]+$' <<<"$out" || { echo "consumer-smoke: no evaluation line (Microsoft.ML $mlnet)" >&2; exit 1; }
  grep -qE "^'the cinematography was superb': positive = True, P = 0\.[5-9]" <<<"$out" || { echo "consumer-smoke: the unseen-word sentence was not scored positive (Microsoft.ML $mlnet)" >&2; exit 1; }
  loaded="$(cd "$app" && find bin -name 'Microsoft.ML.Data.dll' | head -1)"
  echo "consumer-smoke: Microsoft.ML $mlnet OK ($loaded)"
done
