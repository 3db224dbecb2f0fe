#!/usr/bin/env bash
# GPU check for users with an NVIDIA GPU (CUDA 12 + cuDNN 9 for ONNX Runtime 1.31, a CUDA driver for libtorch):
# builds the CLI with the ONNX Runtime CUDA provider (-p:Cuda=true) and TorchSharp's CUDA backend (-p:TorchCuda=true,
# needs the TorchSharp-cuda-linux package from nuget.org), then runs embed + train + zeroshot build + predict on the
# committed fixtures, on the GPU and on the CPU, and prints the execution providers and timings of each step.
# Usage: scripts/gpu-check.sh [GPU_DEVICE_ID] [WORK_DIR]       (run from the repository root)
# Exit code: non-zero when a GPU step fails; no CPU fallback is allowed in the GPU runs (that is what is checked).
set -euo pipefail
GPU=${1:-0}; WORK=${2:-$(mktemp -d /tmp/mlnet-align-gpu-check.XXXX)}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
FIX="$ROOT/tests/fixtures/pairs"
mkdir -p "$WORK"
step() { local name=$1; shift; local s=$(date +%s.%N); "$@" > "$WORK/$name.log" 2>&1 || { echo "FAILED: $name (see $WORK/$name.log)"; tail -5 "$WORK/$name.log"; exit 1; }
         printf '%-28s %8.2f s\n' "$name" "$(echo "$(date +%s.%N) - $s" | bc)"; grep -h "execution provider\|falling back" "$WORK/$name.log" | sed 's/^/    /' || true; }

echo "== build (Release, -p:Cuda=true -p:TorchCuda=true) into $WORK/cli"
dotnet build "$ROOT/src/MLNet.Align.Cli" -c Release -p:Cuda=true -p:TorchCuda=true -o "$WORK/cli" > "$WORK/build.log" 2>&1 || { tail -20 "$WORK/build.log"; exit 1; }
CLI="dotnet $WORK/cli/mlnet-align.dll"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | sed 's/^/GPU: /' || echo "GPU: nvidia-smi not found"
# Class names for the zip: the fixture labels.
cut -f4 "$FIX/pairs.tsv" | tail -n +2 | sort -u > "$WORK/classes.txt"
IMAGES=$(ls "$FIX"/images/*.png | head -8)

for mode in gpu cpu; do
  if [ $mode = gpu ]; then ORT="--gpu-device-id $GPU"; TORCH="--device cuda:$GPU"; else ORT=""; TORCH="--device cpu"; fi
  echo "== $mode"
  step "$mode-embed" $CLI embed --pairs "$FIX/pairs.tsv" --out "$WORK/$mode-store" --tokens $ORT
  step "$mode-train-pooled" $CLI train --store "$WORK/$mode-store" --out "$WORK/$mode-pooled" --epochs 20 --batch-size 28 $TORCH
  step "$mode-train-paper" $CLI train --store "$WORK/$mode-store" --out "$WORK/$mode-paper" --projector paper --embedding-dim 256 --epochs 20 --batch-size 28 $TORCH
  step "$mode-zeroshot-build" $CLI zeroshot build --model "$WORK/$mode-paper/model" --classes "$WORK/classes.txt" --templates icons --out "$WORK/$mode-paper.zip"
  step "$mode-predict" $CLI predict --model "$WORK/$mode-paper.zip" --json --top 3 $ORT $IMAGES
done
echo "== GPU vs CPU zip output (same bundle format; scores differ only by the training device's numerics)"
python3 - "$WORK/gpu-predict.log" "$WORK/cpu-predict.log" <<'PY' 2>/dev/null || echo "(python3 not found: compare $WORK/gpu-predict.log and $WORK/cpu-predict.log)"
import json, sys, re
def load(p):
    t = open(p).read(); return json.loads(t[t.index('['):])
g, c = load(sys.argv[1]), load(sys.argv[2])
print("labels equal:", sum(a["Label"] == b["Label"] for a, b in zip(g, c)), "/", len(g))
PY
echo "logs and outputs: $WORK"
