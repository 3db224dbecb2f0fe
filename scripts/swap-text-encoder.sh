#!/usr/bin/env bash
# "Flexible" alignment (docs/flexible-alignment.md): train ResNet-18 + MiniLM, then swap the text encoder for
# snowflake-arctic-embed-xs and retrain only the text side with the image projector frozen; compare with training
# ResNet-18 + ArcticXs from scratch. Needs the demo data (`mlnet-align data prepare --out DATA`).
# Usage: scripts/swap-text-encoder.sh DATA WORK [mlnet-align command]
#   e.g. scripts/swap-text-encoder.sh /work/data-demo /tmp/swap "dotnet run --project src/MLNet.Align.Cli -c Release --"
set -euo pipefail
DATA=${1:?data folder from data prepare}; WORK=${2:?work folder}; CLI=${3:-mlnet-align}
mkdir -p "$WORK"
# A deterministic third of the training pairs (every 3rd row), image paths made absolute.
awk -F'\t' -v d="$DATA/" 'BEGIN{OFS="\t"} NR==1{print; next} (NR-2)%3==0{$1=d $1; print}' "$DATA/train.tsv" > "$WORK/train-sub.tsv"
awk -F'\t' -v d="$DATA/" 'BEGIN{OFS="\t"} NR==1{print; next} {$1=d $1; print}' "$DATA/heldout.tsv" > "$WORK/heldout.tsv"
t() { local s=$(date +%s.%N); "$@"; echo "TIME $(echo "$(date +%s.%N) - $s" | bc) s: ${*: -3}" >&2; }
[ -d "$WORK/sub-minilm" ] || t $CLI embed --pairs "$WORK/train-sub.tsv" --out "$WORK/sub-minilm"
[ -d "$WORK/sub-arctic" ] || t $CLI embed --pairs "$WORK/train-sub.tsv" --text-encoder arctic-xs --out "$WORK/sub-arctic"
TRAIN="--epochs 10 --batch-size 128"
t $CLI train --store "$WORK/sub-minilm" $TRAIN --out "$WORK/A-resnet-minilm"
t $CLI train --store "$WORK/sub-arctic" $TRAIN --out "$WORK/B-resnet-arctic-scratch"
t $CLI train --store "$WORK/sub-arctic" $TRAIN --out "$WORK/C-resnet-arctic-swap" --init-from "$WORK/A-resnet-minilm/model" --freeze image
for m in A-resnet-minilm B-resnet-arctic-scratch C-resnet-arctic-swap; do
  echo "== $m"
  $CLI retrieval eval --model "$WORK/$m/model" --pairs "$WORK/heldout.tsv" --cache "$WORK/cache" --out "$WORK/$m/retrieval.json" | tail -3
  for set in tuxpaint emoji; do
    $CLI zeroshot eval --model "$WORK/$m/model" --image-folder "$DATA/proxy/$set" --templates icons --cache "$WORK/cache" --out "$WORK/$m/zeroshot-$set.json" | tail -1
  done
  grep -h '"Seconds"\|"EpochsCompleted"\|"BestEpoch"' "$WORK/$m/model/alignment.json" || true
done
