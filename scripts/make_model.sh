#!/usr/bin/env bash
# Recipe of a bundled model: train it (resumable: rerun to continue, pass e.g. --time-limit 14
# to train in slices), export a calibrated model card into the package and check it.
#   scripts/make_model.sh MODEL [deepraft train options]
# MODEL: default (stamp v2): configs/default_stage1.yaml for 2,500 steps, its fine-tune
# configs/default_stage2.yaml for 2,000 steps, configs/default_stage3.yaml for 3,000 steps, the
# fine-tune configs/default.yaml (3,295 steps of batch 64: the bundled one ran on a lent GPU,
# pass --device cuda --workers 6 there). A stage whose config mixes in non-photos
# (data.nonphoto_fraction) trains with those of $NONPHOTO, and a model ending on one is
# calibrated on their val packages and 3,000 generated pictures too (the scanner-only fine-tune
# against false blocks, configs/default_nonphoto.yaml, was not bundled: see
# benchmarks/results/nonphoto_finetune_step1200/README.md). STAGES lists
# the runs before MODEL as CONFIG[:UNTIL_STEP], each started from the one before; the first models
# (configs/default_base.yaml, then a fine-tune such as configs/hardened.yaml) are made with
# STAGES=default_base scripts/make_model.sh hardened.
# Run from the repository root, with ../shared present.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:?usage: scripts/make_model.sh MODEL [train options]}
shift
PHOTOS=${PHOTOS:-../shared/data/photos}
NONPHOTO=${NONPHOTO:-../shared/data/nonphoto}
if [[ "$MODEL" == default ]]; then
  STAGES=${STAGES:-default_stage1:2500 default_stage2:2000 default_stage3:3000}
fi
CALIB=()
if grep -q "nonphoto_fraction" "configs/$MODEL.yaml"; then
  CALIB=(--calib-nonphoto "$NONPHOTO" --calib-generated 3000 --fpr 0.1 --fpr 0.01 --fpr 0.001 --fpr 0.0001)
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
  NP=()
  # a stage that mixes in non-photos (data.nonphoto_fraction in its config) gets them
  if grep -q "nonphoto_fraction" "configs/$RUN.yaml"; then NP=(--nonphoto "$NONPHOTO"); fi
  deepraft train --config "configs/$RUN.yaml" --data "$PHOTOS/train" --run-name "$RUN" \
    ${PREV:+--init-from "runs/$PREV"} ${UNTIL:+--until-step "$UNTIL"} "${NP[@]}" "$@"
  PREV=$RUN
  RECIPE="${RECIPE:+$RECIPE, then }configs/$RUN.yaml${UNTIL:+ to step $UNTIL}${NP:+ with $NONPHOTO}"
done
deepraft export "runs/$MODEL" --name "$MODEL" --out "src/deepraft/weights/$MODEL" \
  --calib-data "$PHOTOS/val" --variants 50 --test-data "$PHOTOS/test" "${CALIB[@]}" \
  --recipe "scripts/make_model.sh $MODEL ($RECIPE, on $PHOTOS/train)"
python benchmarks/check_model.py --model "$MODEL" --data "$PHOTOS/test"
