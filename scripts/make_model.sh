#!/usr/bin/env bash
# Recipe of a bundled model: train it (resumable: rerun to continue, pass e.g. --time-limit 14
# to train in slices), export a calibrated model card into the package and check it.
#   scripts/make_model.sh MODEL [deepraft train options]
# MODEL: default (stamp v2): configs/default_stage1.yaml for 2,500 steps, its fine-tune
# configs/default_stage2.yaml for 2,000 steps, configs/default_stage3.yaml for 3,000 steps, then
# the fine-tune configs/default.yaml (3,295 steps of batch 64: the bundled one ran on a lent GPU,
# pass --device cuda --workers 6 there). STAGES lists
# the runs before MODEL as CONFIG[:UNTIL_STEP], each started from the one before; the first models
# (configs/default_base.yaml, then a fine-tune such as configs/hardened.yaml) are made with
# STAGES=default_base scripts/make_model.sh hardened.
# Run from the repository root, with ../shared present.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:?usage: scripts/make_model.sh MODEL [train options]}
shift
PHOTOS=${PHOTOS:-../shared/data/photos}
if [[ "$MODEL" == default ]]; then
  STAGES=${STAGES:-default_stage1:2500 default_stage2:2000 default_stage3:3000}
fi
PREV=""
RECIPE=""
for STAGE in ${STAGES:-} "$MODEL"; do
  RUN=${STAGE%%:*}
  UNTIL=""
  [[ "$STAGE" == *:* ]] && UNTIL=${STAGE#*:}
  # slices trained in earlier sessions are committed under training/RUN: continue from them
  if [[ ! -d "runs/$RUN" && -d "training/$RUN" ]]; then
    mkdir -p runs && cp -r "training/$RUN" "runs/$RUN"
  fi
  deepraft train --config "configs/$RUN.yaml" --data "$PHOTOS/train" --run-name "$RUN" \
    ${PREV:+--init-from "runs/$PREV"} ${UNTIL:+--until-step "$UNTIL"} "$@"
  PREV=$RUN
  RECIPE="${RECIPE:+$RECIPE, then }configs/$RUN.yaml${UNTIL:+ to step $UNTIL}"
done
deepraft export "runs/$MODEL" --name "$MODEL" --out "src/deepraft/weights/$MODEL" \
  --calib-data "$PHOTOS/val" --variants 50 --test-data "$PHOTOS/test" \
  --recipe "scripts/make_model.sh $MODEL ($RECIPE, on $PHOTOS/train)"
python benchmarks/check_model.py --model "$MODEL" --data "$PHOTOS/test"
