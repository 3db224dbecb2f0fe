#!/usr/bin/env bash
# Proves the packages work outside this repository, as a new user would use them (run by .ci/run after the tests):
#   1. packs MLNet.Align (library) and mlnet-align (dotnet tool) into a temporary folder feed, with a unique version;
#   2. creates a new console app OUTSIDE the repository, `dotnet add package MLNet.Align` from that feed, copies
#      examples/ZeroShotTrainAndPredict/Program.cs into it and runs train -> zip -> PredictionEngine on the fixtures;
#   3. `dotnet tool install --tool-path` from the feed, runs `mlnet-align --help` and one `predict` on the app's zip.
# Usage: bash scripts/package-check.sh            (needs the .NET 10 SDK and NuGet; about 5-10 minutes on 2 cores)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d /tmp/mlnet-align-package-check.XXXXXX)"
version="0.0.0-check.$(date +%s)"
packages="${NUGET_PACKAGES:-$HOME/.nuget/packages}"
cleanup() {
  rm -rf "$work" "$packages/mlnet.align/$version" "$packages/mlnet-align/$version"
}
trap cleanup EXIT
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

echo "package-check: packing $version into $work/feed"
dotnet pack "$repo/src/MLNet.Align/MLNet.Align.csproj" -c Release -o "$work/feed" -p:Version="$version" -v q -nologo
dotnet pack "$repo/src/MLNet.Align.Cli/MLNet.Align.Cli.csproj" -c Release -o "$work/feed" -p:Version="$version" -v q -nologo
ls -1 "$work/feed"

echo "package-check: fresh app outside the repository ($work/app)"
mkdir -p "$work/app"
cd "$work/app"
dotnet new console --framework net10.0 --name FreshApp --output . >/dev/null
dotnet add package MLNet.Align --version "$version" --source "$work/feed" >/dev/null
cp "$repo/examples/ZeroShotTrainAndPredict/Program.cs" Program.cs
fixtures="$repo/tests/fixtures/pairs"
img1="$fixtures/$(awk -F'\t' 'NR==2{print $1}' "$fixtures/pairs.tsv")"
img2="$fixtures/$(awk -F'\t' 'NR==12{print $1}' "$fixtures/pairs.tsv")"
MLNET_ALIGN_EXAMPLE_WORK="$work/example" dotnet run -c Release -- "$fixtures/pairs.tsv" \
  "$repo/examples/ZeroShotTrainAndPredict/classes.txt" "$img1" "$img2" | tee "$work/app.log"
zip="$work/example/zero-shot-classifier.zip"
test -s "$zip" || { echo "package-check: FAILED: the fresh app wrote no zip"; exit 1; }
echo "package-check: fresh app OK (train -> zip -> PredictionEngine)"

echo "package-check: dotnet tool install from the feed"
dotnet tool install mlnet-align --version "$version" --add-source "$work/feed" --tool-path "$work/tool" >/dev/null
"$work/tool/mlnet-align" --help | head -n 20
"$work/tool/mlnet-align" predict --model "$zip" "$img1" | tee "$work/predict.log"
grep -q . "$work/predict.log" || { echo "package-check: FAILED: predict printed nothing"; exit 1; }
echo "package-check: tool OK (--help, predict)"
