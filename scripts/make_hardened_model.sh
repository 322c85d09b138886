#!/usr/bin/env bash
# Recipe of the bundled `hardened` model: stage 1 of `default`
# (configs/default_base.yaml), then a randomized-smoothing fine-tune (configs/hardened.yaml). Every
# stage resumes where it stopped: rerun to continue (pass e.g. --time-limit 14 to train in
# slices). Then export a calibrated model card into the package and check it.
# Run from the repository root, with ../shared present.
set -euo pipefail
cd "$(dirname "$0")/.."
PHOTOS=${PHOTOS:-../shared/data/photos}
deepraft train --config configs/default_base.yaml --data "$PHOTOS/train" --run-name default-base "$@"
deepraft train --config configs/hardened.yaml --data "$PHOTOS/train" --run-name hardened --init-from runs/default-base "$@"
deepraft export runs/hardened --name hardened --out src/deepraft/weights/hardened \
  --calib-data "$PHOTOS/val" --variants 50 --test-data "$PHOTOS/test" \
  --recipe "scripts/make_hardened_model.sh (configs/default_base.yaml, then configs/hardened.yaml, on $PHOTOS/train)"
python benchmarks/check_model.py --model hardened --data "$PHOTOS/test"
