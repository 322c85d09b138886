#!/usr/bin/env bash
# The evaluation reports of a model on the held-out test photos (reports/MODEL/).
#   scripts/make_reports.sh [MODEL] [--quick]
# Environment: VARIANTS (per photo and condition, default 34), ATTACK_PHOTOS (default 30),
# SQUARE_QUERIES (default 1000), AA_PHOTOS (AutoAttack photos, default 10), CERTIFY_N (2000; 0
# skips certification, e.g. for a model not trained with smoothing noise), DONORS (the stamped
# photos whose averaged residual the forgery attack adds, default ../shared/data/photos/val),
# WORKERS (eval processes, default: the number of cores).
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:-default}
QUICK=${2:-}
PHOTOS=${PHOTOS:-../shared/data/photos/test}
OUT=reports/$MODEL
mkdir -p "$OUT"
deepraft eval --model "$MODEL" --data "$PHOTOS" --out "$OUT" --workers "${WORKERS:-$(nproc)}" \
  --variants "${VARIANTS:-34}" $QUICK
if [ "${CERTIFY_N:-2000}" != 0 ]; then
  deepraft certify --model "$MODEL" --data "$PHOTOS" --out "$OUT" --n "${CERTIFY_N:-2000}" $QUICK
fi
deepraft attack --model "$MODEL" --data "$PHOTOS" --out "$OUT" --attack apgd-ce --attack square \
  --max-photos "${ATTACK_PHOTOS:-30}" --n-queries "${SQUARE_QUERIES:-1000}" $QUICK
deepraft attack --model "$MODEL" --data "$PHOTOS" --out "$OUT/autoattack" --attack autoattack --eps 8 --eps 16 \
  --l2 0 --max-photos "${AA_PHOTOS:-10}" $QUICK
deepraft attack --model "$MODEL" --data "$PHOTOS" --out "$OUT/forgery" --mode forgery \
  --donors "${DONORS:-../shared/data/photos/val}" $QUICK
deepraft report "$OUT" --out "$OUT/paper_tables.md"
rm -f "$OUT/samples.csv.gz" && gzip -k -9 "$OUT/samples.csv" && rm "$OUT/samples.csv"
