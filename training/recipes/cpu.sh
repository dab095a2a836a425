#!/usr/bin/env bash
# The CPU training recipe (docs/training.md "Recipes"): a long fine-tune of the default model that goes on
# across interruptions and machines. Run it again (or after Ctrl-C) and it continues where it stopped:
#
#   training/recipes/cpu.sh              # RECIPE_MINUTES=100 of training, then the candidate weights
#
# 1. Data: RECIPE_DATA (datasets/photo_train) made with the model card's step-5 synth command from the
#    photograph folders of training/recipes/photos.txt, unless its dataset.yaml exists.
# 2. Train: refine at backbone scale 0.5 with hard scenes (--hard-scenes 0.5), --resume auto from the run
#    folder RECIPE_RUN (runs/recipe); a run folder without last.pth (a new machine) starts from the
#    committed default weights (--init-weights). --max-minutes RECIPE_MINUTES, then validation and last.pth.
#    bf16 autocast with channels_last where the CPU multiplies bf16 natively (core.settings.native_bf16;
#    1.3x to 1.5x the fp32 steps per second at these sizes, training.bench_train), else fp32.
#    Each last.pth (every RECIPE_CHECKPOINT_EVERY steps) is kept in RUN/kept/ (the newest RECIPE_KEEP); the
#    output in RUN/train-log.txt, the weights a new run started from in RUN/started-from.txt.
# 3. Export: RUN/candidate.safetensors (fp16), the mean of the kept checkpoints (RECIPE_EXPORT=best: the
#    best validation checkpoint instead), and the step count to record in the model card.
# Ctrl-C stops training after the current step (last.pth written) and still exports; exit status: the
# trainer's (130 after Ctrl-C).
#
# Settings (environment; paths relative to the repository root): PY (.venv/bin/python)  RECIPE_RUN (runs/recipe)  RECIPE_DATA (datasets/photo_train)
#   RECIPE_PHOTO_LIST (training/recipes/photos.txt)  RECIPE_INIT (matte_ros/weights/default.safetensors)
#   RECIPE_MINUTES (100)  RECIPE_PRECISION (auto | bf16 | fp32)  RECIPE_THREADS (1)  RECIPE_LOADERS (1)
#   RECIPE_BATCH (4)  RECIPE_IMAGE (384)  RECIPE_CROP_MIN (256)  RECIPE_PIXELS (80000)  RECIPE_LR_SCALE (2)
#   RECIPE_SEED (6)  RECIPE_CHECKPOINT_EVERY (25)  RECIPE_VALID_EVERY (100)  RECIPE_VALID_SAMPLES (24)
#   RECIPE_KEEP (9)  RECIPE_EXPORT (mean | best)  RECIPE_TRAIN_FLAGS (more flags of python -m training train)
#   data, when made: RECIPE_COUNT (300 foregrounds and backgrounds; validation 1/10)  RECIPE_SIZE (512)
#   RECIPE_TEST_COUNT (60)  RECIPE_TEST_SIZE (384 512)  RECIPE_WORKERS (2)
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 1
# shellcheck source=training/recipes/common.sh
source training/recipes/common.sh
PY="${PY:-.venv/bin/python}"
RUN="${RECIPE_RUN:-runs/recipe}"
DATA="${RECIPE_DATA:-datasets/photo_train}"
KEEP="${RECIPE_KEEP:-9}"
COUNT="${RECIPE_COUNT:-300}"
VALID=$((COUNT / 10 > 1 ? COUNT / 10 : 1))
read -r -a TEST_SIZE <<<"${RECIPE_TEST_SIZE:-384 512}"
read -r -a TRAIN_FLAGS <<<"${RECIPE_TRAIN_FLAGS:-}"

if [ ! -f "$DATA/dataset.yaml" ]; then
  mapfile -t photos < <(grep -v '^\s*#' "${RECIPE_PHOTO_LIST:-training/recipes/photos.txt}" | grep -v '^\s*$')
  echo "cpu recipe: making $DATA"
  "$PY" -m training synth --out "$DATA" --seed 11 --count "$COUNT" --valid-count "$VALID" --backgrounds "$COUNT" \
    --valid-backgrounds "$VALID" --test-count "${RECIPE_TEST_COUNT:-60}" --size "${RECIPE_SIZE:-512}" \
    "${RECIPE_SIZE:-512}" --test-size "${TEST_SIZE[@]}" --workers "${RECIPE_WORKERS:-2}" --photos "${photos[@]}" ||
    exit $?
fi

PRECISION="${RECIPE_PRECISION:-auto}"
if [ "$PRECISION" = auto ]; then
  PRECISION=fp32
  "$PY" -c 'import sys; from matte_ros.core.settings import native_bf16; sys.exit(not native_bf16())' && PRECISION=bf16
fi
FAST=()
[ "$PRECISION" = bf16 ] && FAST=(--bf16 --channels-last)
START=()
if [ -f "$RUN/last.pth" ]; then
  echo "cpu recipe: continuing $RUN/last.pth"
else
  START=(--init-weights "${RECIPE_INIT:-matte_ros/weights/default.safetensors}")
  echo "cpu recipe: no $RUN/last.pth: a new run from ${START[1]}"
fi
TRAIN=("$PY" -m training train --model-type refine --backbone mobilenetv2 --dataset-config "$DATA/dataset.yaml"
  "${START[@]}" --resume auto --hard-scenes 0.5 --backbone-scale 0.5 --image-size "${RECIPE_IMAGE:-384}"
  --crop-size "${RECIPE_CROP_MIN:-256}" "${RECIPE_IMAGE:-384}" --refine-sample-pixels "${RECIPE_PIXELS:-80000}"
  --batch-size "${RECIPE_BATCH:-4}" --epochs 99999 --max-minutes "${RECIPE_MINUTES:-100}"
  --lr-scale "${RECIPE_LR_SCALE:-2}" --valid-every "${RECIPE_VALID_EVERY:-100}"
  --valid-samples "${RECIPE_VALID_SAMPLES:-24}" --checkpoint-every "${RECIPE_CHECKPOINT_EVERY:-25}"
  --num-workers "${RECIPE_LOADERS:-1}" --image-every 0 --seed "${RECIPE_SEED:-6}"
  --threads "${RECIPE_THREADS:-1}" --device cpu "${FAST[@]}" --output-dir "$RUN" "${TRAIN_FLAGS[@]}")
echo "cpu recipe: $PRECISION; ${TRAIN[*]}"
mkdir -p "$RUN"
keep_checkpoints "$RUN" "$KEEP" 20 >/dev/null 2>&1 &
keeper=$!
if [ ${#START[@]} -gt 0 ]; then
  echo "${START[1]} (sha256 $(sha256sum "${START[1]}" | cut -c1-64))" >"$RUN/started-from.txt"
fi
"${TRAIN[@]}" 2>&1 | (trap '' INT; exec tee -a "$RUN/train-log.txt")   # tee outlives a Ctrl-C
rc=${PIPESTATUS[0]}
kill "$keeper"
wait "$keeper" 2>/dev/null
keep_new_checkpoint "$RUN" "$KEEP"
if [ ! -f "$RUN/last.pth" ]; then
  echo "cpu recipe: training stopped (exit $rc) before writing $RUN/last.pth: nothing to export" >&2
  exit "$rc"
fi

if [ "${RECIPE_EXPORT:-mean}" = best ] && [ -f "$RUN/best.pth" ]; then
  "$PY" -m training.average "$RUN/best.pth" --out "$RUN/candidate.safetensors" || exit $?
else
  export_candidate "$PY" "$RUN" "$RUN/candidate.safetensors" || exit $?
fi
steps=$("$PY" -c 'import sys; from matte_ros.core.model import read_checkpoint
print(read_checkpoint(sys.argv[1]).extra["training"]["step"])' "$RUN/last.pth")
echo "cpu recipe: $RUN is at step $steps from $(cat "$RUN/started-from.txt" 2>/dev/null || echo "its first weights")"
echo "cpu recipe: candidate $RUN/candidate.safetensors; to ship it: score it (python -m training eval --suite" \
  "stress --checkpoint $RUN/candidate.safetensors), and if it wins copy it to matte_ros/weights/default.safetensors" \
  "and record the $steps steps in the model card"
exit "$rc"
