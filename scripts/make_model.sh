#!/usr/bin/env bash
# Recipe of a bundled model: train it (resumable: rerun to continue, pass e.g. --time-limit 14
# to train in slices), export a calibrated model card into the package and check it.
#   scripts/make_model.sh MODEL [deepraft train options]
# MODEL: default (stamp v2): stage 1 configs/default_stage1.yaml for 2,500 steps, then the
# fine-tune configs/default.yaml. The first models (stage 1 configs/default_base.yaml, then a
# fine-tune such as configs/hardened.yaml) are made with STAGE1=default_base scripts/make_model.sh
# hardened. STAGE1_UNTIL ends stage 1 at that step of its schedule.
# Run from the repository root, with ../shared present.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:?usage: scripts/make_model.sh MODEL [train options]}
shift
PHOTOS=${PHOTOS:-../shared/data/photos}
if [[ "$MODEL" == default ]]; then
  STAGE1=${STAGE1:-default_stage1}
  STAGE1_UNTIL=${STAGE1_UNTIL:-2500}
fi
# slices trained in earlier sessions are committed under training/RUN: continue from them
for RUN in ${STAGE1:-} "$MODEL"; do
  if [[ ! -d "runs/$RUN" && -d "training/$RUN" ]]; then
    mkdir -p runs && cp -r "training/$RUN" "runs/$RUN"
  fi
done
if [[ -n "${STAGE1:-}" ]]; then
  deepraft train --config "configs/$STAGE1.yaml" --data "$PHOTOS/train" --run-name "$STAGE1" \
    ${STAGE1_UNTIL:+--until-step "$STAGE1_UNTIL"} "$@"
  deepraft train --config "configs/$MODEL.yaml" --data "$PHOTOS/train" --run-name "$MODEL" --init-from "runs/$STAGE1" "$@"
  RECIPE="configs/$STAGE1.yaml, then configs/$MODEL.yaml"
else
  deepraft train --config "configs/$MODEL.yaml" --data "$PHOTOS/train" --run-name "$MODEL" "$@"
  RECIPE="configs/$MODEL.yaml"
fi
deepraft export "runs/$MODEL" --name "$MODEL" --out "src/deepraft/weights/$MODEL" \
  --calib-data "$PHOTOS/val" --variants 50 --test-data "$PHOTOS/test" \
  --recipe "scripts/make_model.sh $MODEL ($RECIPE, on $PHOTOS/train)"
python benchmarks/check_model.py --model "$MODEL" --data "$PHOTOS/test"
