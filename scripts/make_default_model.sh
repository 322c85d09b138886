#!/usr/bin/env bash
# Recipe of the bundled `default` model, in two stages: the plain joint model
# (configs/default_base.yaml), then a geometry fine-tune of it (configs/default.yaml). Every
# stage resumes where it stopped: rerun to continue (pass e.g. --time-limit 14 to train in
# slices). Then export a calibrated model card into the package and check it.
# Run from the repository root, with ../shared present.
set -euo pipefail
cd "$(dirname "$0")/.."
PHOTOS=${PHOTOS:-../shared/data/photos}
deepraft train --config configs/default_base.yaml --data "$PHOTOS/train" --run-name default-base "$@"
deepraft train --config configs/default.yaml --data "$PHOTOS/train" --run-name default --init-from runs/default-base "$@"
deepraft export runs/default --name default --out src/deepraft/weights/default \
  --calib-data "$PHOTOS/val" --variants 50 --test-data "$PHOTOS/test" \
  --recipe "scripts/make_default_model.sh (configs/default_base.yaml, then configs/default.yaml, on $PHOTOS/train)"
python benchmarks/check_model.py --model default --data "$PHOTOS/test"
