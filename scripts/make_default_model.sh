#!/usr/bin/env bash
# Recipe of the bundled `default` model: train (resumable: rerun to continue), then export a
# calibrated model card into the package. Run from the repository root, with ../shared present.
set -euo pipefail
cd "$(dirname "$0")/.."
PHOTOS=${PHOTOS:-../shared/data/photos}
deepraft train --config configs/default.yaml --data "$PHOTOS/train" --run-name default "$@"
deepraft export runs/default --name default --out src/deepraft/weights/default \
  --calib-data "$PHOTOS/val" --variants 50 --test-data "$PHOTOS/test" \
  --recipe "scripts/make_default_model.sh (configs/default.yaml on $PHOTOS/train)"
python benchmarks/check_model.py --model default --data "$PHOTOS/test"
