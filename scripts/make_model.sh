#!/usr/bin/env bash
# Recipe of a bundled model, in two stages: the plain joint model (configs/default_base.yaml,
# shared by every bundled model), then a fine-tune of it (configs/MODEL.yaml). Every stage
# resumes where it stopped: rerun to continue (pass e.g. --time-limit 14 to train in slices).
# Then export a calibrated model card into the package and check it.
#   scripts/make_model.sh MODEL [deepraft train options]      (MODEL: default, hardened)
# Run from the repository root, with ../shared present.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:?usage: scripts/make_model.sh MODEL [train options]}
shift
PHOTOS=${PHOTOS:-../shared/data/photos}
deepraft train --config configs/default_base.yaml --data "$PHOTOS/train" --run-name default-base "$@"
deepraft train --config "configs/$MODEL.yaml" --data "$PHOTOS/train" --run-name "$MODEL" --init-from runs/default-base "$@"
deepraft export "runs/$MODEL" --name "$MODEL" --out "src/deepraft/weights/$MODEL" \
  --calib-data "$PHOTOS/val" --variants 50 --test-data "$PHOTOS/test" \
  --recipe "scripts/make_${MODEL}_model.sh (configs/default_base.yaml, then configs/$MODEL.yaml, on $PHOTOS/train)"
python benchmarks/check_model.py --model "$MODEL" --data "$PHOTOS/test"
