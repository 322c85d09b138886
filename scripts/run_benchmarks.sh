#!/usr/bin/env bash
# Every benchmark, then the README's Performance section from their results (benchmarks/results/).
#   scripts/run_benchmarks.sh [--quick]
# Speed of `default` on the CPU, and on CUDA when a GPU is
# visible; the peer comparison against invisible-watermark (PEERS_PHOTOS photos, default 10, with
# PEERS_VARIANTS variants, default 1: rivaGan needs ~3 s a scan on 2 cores); --quick: the quick
# grid on 6 photos and 2 repeats per size.
set -euo pipefail
cd "$(dirname "$0")/.."
python -c "import imwatermark" 2>/dev/null || {
  echo "run_benchmarks: the peer comparison needs invisible-watermark: pip install -e '.[bench]'" >&2; exit 2; }
QUICK=${1:-}
REPEATS=5
PEERS=(--photos "${PEERS_PHOTOS:-10}" --variants "${PEERS_VARIANTS:-1}")
if [ "$QUICK" = "--quick" ]; then REPEATS=2; PEERS=(--quick); fi
python benchmarks/speed.py --device cpu --repeats "$REPEATS"
if python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  python benchmarks/speed.py --device cuda --repeats "$REPEATS"
fi
python benchmarks/peers.py "${PEERS[@]}"
python benchmarks/update_docs.py
