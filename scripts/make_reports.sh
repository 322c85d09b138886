#!/usr/bin/env bash
# The evaluation reports of a model on the held-out test photos (reports/MODEL/).
#   scripts/make_reports.sh [MODEL] [--quick]
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:-default}
QUICK=${2:-}
PHOTOS=${PHOTOS:-../shared/data/photos/test}
OUT=reports/$MODEL
mkdir -p "$OUT"
deepraft eval --model "$MODEL" --data "$PHOTOS" --out "$OUT" --workers "$(nproc)" $QUICK
deepraft certify --model "$MODEL" --data "$PHOTOS" --out "$OUT" --n 2000 $QUICK
deepraft attack --model "$MODEL" --data "$PHOTOS" --out "$OUT" --attack apgd-ce --attack square \
  --max-photos 30 $QUICK
deepraft attack --model "$MODEL" --data "$PHOTOS" --out "$OUT/autoattack" --attack autoattack --eps 8 --eps 16 \
  --l2 0 --max-photos 10 $QUICK
deepraft report "$OUT" --out "$OUT/paper_tables.md"
rm -f "$OUT/samples.csv.gz" && gzip -k -9 "$OUT/samples.csv" && rm "$OUT/samples.csv"
