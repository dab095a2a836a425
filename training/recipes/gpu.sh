#!/usr/bin/env bash
# The GPU training recipe (docs/training.md "Recipes"): on a machine with one CUDA GPU, 16 cores and no
# network, one command makes its training data there, fine-tunes the default model for a fixed
# wall-clock budget and returns fp16 weights with the stress suite's table:
#
#   make gpu-photos gpu-wheels-train     # here: .photos/ (training and stress photographs), .whl-train/ (kornia)
#   OUT=$OUT training/recipes/gpu.sh     # there, in the copied tree with .photos/ and .whl-train/ (or .whl/)
#
# Everything within GPU_SECONDS (540 s) from start to end (.ci/gpu-env: the machine's python3 when its torch
# sees CUDA, the wheels it lacks, one time limit a step): setup; data (python -m training synth from the
# training photographs, and in the background the stress suite generated from the held-out ones and scored
# for the difference key); train (a refine model fine-tuned from the default weights with hard scenes for
# what the budget leaves after RECIPE_RESERVE s, the mean of its recent checkpoints exported as fp16
# safetensors); stress (the model's stress table, at the node's defaults). Results in $OUT, 8 files:
# setup.txt, data.txt, train.txt, stress.txt (the steps' logs), summary.txt (a verdict a step),
# model.safetensors, stress.md (the model's table) and card.txt (steps, budget, command lines, both tables).
#
# Settings (environment; defaults for an H100 with 16 cores, tiny values run it on a CPU, as
# test/test_training_recipes.py does):
#   OUT (out/gpu-train)  GPU_SECONDS (540)  GPU_WHEELS (.whl-train where it exists, else .whl)
#   RECIPE_PHOTOS (.photos/train)  RECIPE_STRESS_PHOTOS (.photos/stress)  RECIPE_WORK (data and checkpoints;
#     default: inside gpu-env's temporary folder, removed at exit)
#   RECIPE_COUNT (2000 training foregrounds, as many backgrounds; validation 1/20)  RECIPE_SIZE (512 px)
#   RECIPE_CPUS (every core: synth workers)  RECIPE_LOADERS (cores - 4: data loader workers)
#   RECIPE_INIT (matte_ros/weights/default.safetensors)  RECIPE_BATCH (16)  RECIPE_IMAGE (512: sample side)
#   RECIPE_CROP_MIN (384)  RECIPE_PIXELS (80000 refined per sample)  RECIPE_LR_SCALE (2)  RECIPE_SEED (21)
#   RECIPE_MINUTES (training; default what GPU_SECONDS leaves less RECIPE_RESERVE, 150 s, for the rest)
#   RECIPE_CHECKPOINT_EVERY (200 steps: validation and a kept checkpoint)  RECIPE_KEEP (5: checkpoints averaged)
#   RECIPE_TRAIN_FLAGS (more flags of python -m training train, e.g. --channels-last)
#   RECIPE_STRESS_COUNT (24 a category)  RECIPE_STRESS_SIZE (320 448)  RECIPE_STRESS_CATEGORIES (all)
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT="${OUT:-out/gpu-train}"
GPU_SECONDS="${GPU_SECONDS:-540}"
if [ -z "${GPU_WHEELS:-}" ] && [ -d "$ROOT/.whl-train" ]; then
  GPU_WHEELS=.whl-train
fi
# shellcheck source=.ci/gpu-env
source "$ROOT/.ci/gpu-env"
# shellcheck source=training/recipes/common.sh
source "$ROOT/training/recipes/common.sh"

gpu_setup torch numpy cv2 yaml safetensors kornia training.trainer training.synth_cli training.stress_cli

CORES=$(nproc)
RECIPE_PHOTOS="${RECIPE_PHOTOS:-.photos/train}"
RECIPE_STRESS_PHOTOS="${RECIPE_STRESS_PHOTOS:-.photos/stress}"
WORK="${RECIPE_WORK:-$GPU_PREFIX/recipe}"
RECIPE_COUNT="${RECIPE_COUNT:-2000}"
RECIPE_SIZE="${RECIPE_SIZE:-512}"
RECIPE_CPUS="${RECIPE_CPUS:-$CORES}"
RECIPE_LOADERS="${RECIPE_LOADERS:-$((CORES > 5 ? CORES - 4 : 1))}"
RECIPE_INIT="${RECIPE_INIT:-matte_ros/weights/default.safetensors}"
RECIPE_BATCH="${RECIPE_BATCH:-16}"
RECIPE_IMAGE="${RECIPE_IMAGE:-512}"
RECIPE_CROP_MIN="${RECIPE_CROP_MIN:-384}"
RECIPE_PIXELS="${RECIPE_PIXELS:-80000}"
RECIPE_LR_SCALE="${RECIPE_LR_SCALE:-2}"
RECIPE_SEED="${RECIPE_SEED:-21}"
RECIPE_RESERVE="${RECIPE_RESERVE:-150}"
RECIPE_CHECKPOINT_EVERY="${RECIPE_CHECKPOINT_EVERY:-200}"
RECIPE_KEEP="${RECIPE_KEEP:-5}"
RECIPE_STRESS_COUNT="${RECIPE_STRESS_COUNT:-24}"
read -r -a STRESS_SIZE <<<"${RECIPE_STRESS_SIZE:-320 448}"
read -r -a TRAIN_FLAGS <<<"${RECIPE_TRAIN_FLAGS:-}"
VALID=$((RECIPE_COUNT / 20 > 2 ? RECIPE_COUNT / 20 : 2))
DEVICE=cpu
[ "$CUDA" = yes ] && DEVICE=cuda
mkdir -p "$WORK"
rm -f "$OUT/model.safetensors" "$OUT/stress.md" "$OUT/card.txt"     # nothing of an earlier run into this one's
export WORK DEVICE RECIPE_KEEP

SYNTH=("$PY" -m training synth --out "$WORK/data" --seed "$RECIPE_SEED" --count "$RECIPE_COUNT"
  --valid-count "$VALID" --backgrounds "$RECIPE_COUNT" --valid-backgrounds "$VALID" --test-count 0
  --size "$RECIPE_SIZE" "$RECIPE_SIZE" --workers "$RECIPE_CPUS" --photos "$RECIPE_PHOTOS")
STRESS=("$PY" -m training eval --suite stress --photos "$RECIPE_STRESS_PHOTOS" --data "$WORK/stress"
  --count "$RECIPE_STRESS_COUNT" --size "${STRESS_SIZE[@]}")
if [ -n "${RECIPE_STRESS_CATEGORIES:-}" ]; then
  read -r -a categories <<<"$RECIPE_STRESS_CATEGORIES"
  STRESS+=(--categories "${categories[@]}")
fi

# train_and_export TRAIN_COMMAND...: train while keeping its recent checkpoints, then export their mean
train_and_export() {
  local keeper rc
  keep_checkpoints "$WORK/run" "$RECIPE_KEEP" 5 >/dev/null 2>&1 &
  keeper=$!
  "$@"
  rc=$?
  kill "$keeper"
  wait "$keeper" 2>/dev/null
  keep_new_checkpoint "$WORK/run" "$RECIPE_KEEP"
  [ "$rc" -eq 0 ] || return "$rc"
  export_candidate "$PY" "$WORK/run" "$OUT/model.safetensors"
}

# score_model STRESS_COMMAND...: the model's stress table, into $OUT/stress.md
score_model() {
  "$@" --method model --checkpoint "$OUT/model.safetensors" --device "$DEVICE" --out "$WORK/stress.csv" &&
    cp "$WORK/stress.md" "$OUT/stress.md"
}
export -f train_and_export score_model keep_checkpoints keep_new_checkpoint export_candidate

# the stress suite is generated (and the difference key scored) on a spare core while the rest works
mkdir -p "$WORK/dk"
timeout "$((GPU_SECONDS - (SECONDS - GPU_START)))" "${STRESS[@]}" --method difference-key \
  --out "$WORK/dk/stress.csv" >"$WORK/dk.txt" 2>&1 &
DK=$!

if [ -f "$WORK/data/dataset.yaml" ]; then     # RECIPE_WORK of an earlier run on this machine
  skip data "$WORK/data holds a dataset already: used as it is"
else
  step data 240 "${SYNTH[@]}"
fi
rm -rf "$WORK/run"                            # a fresh fine-tune: no checkpoints of an earlier run averaged in

MINUTES="${RECIPE_MINUTES:-$(awk -v s=$((GPU_SECONDS - (SECONDS - GPU_START) - RECIPE_RESERVE)) \
  'BEGIN {printf "%.2f", s / 60}')}"
TRAIN=("$PY" -m training train --model-type refine --backbone mobilenetv2 --dataset-config "$WORK/data/dataset.yaml"
  --init-weights "$RECIPE_INIT" --hard-scenes 0.5 --backbone-scale 0.5 --image-size "$RECIPE_IMAGE"
  --crop-size "$RECIPE_CROP_MIN" "$RECIPE_IMAGE" --refine-sample-pixels "$RECIPE_PIXELS"
  --batch-size "$RECIPE_BATCH" --epochs 99999 --max-minutes "$MINUTES" --lr-scale "$RECIPE_LR_SCALE"
  --valid-every "$RECIPE_CHECKPOINT_EVERY" --valid-samples "$VALID" --checkpoint-every "$RECIPE_CHECKPOINT_EVERY"
  --num-workers "$RECIPE_LOADERS" --image-every 0 --log-every 50 --seed "$RECIPE_SEED" --device "$DEVICE"
  --output-dir "$WORK/run" "${TRAIN_FLAGS[@]}")
if [ ! -f "$WORK/data/dataset.yaml" ]; then
  skip train "no training data (see data.txt)"
elif awk -v m="$MINUTES" 'BEGIN {exit !(m > 0)}'; then
  step train "$(awk -v m="$MINUTES" 'BEGIN {printf "%d", m * 60 + 120}')" bash -c 'train_and_export "$@"' _ "${TRAIN[@]}"
else
  skip train "no time left for training (--max-minutes $MINUTES)"
fi

wait "$DK"
if [ -f "$OUT/model.safetensors" ]; then
  step stress 300 bash -c 'score_model "$@"' _ "${STRESS[@]}"
else
  skip stress "no weights to score (see train.txt)"
fi

{
  gpu=$(command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
  echo "GPU training recipe (training/recipes/gpu.sh); device: $DEVICE${gpu:+ ($gpu)}; python: $PY"
  echo "budget: GPU_SECONDS=$GPU_SECONDS s for the whole run, $((SECONDS - GPU_START)) s used;" \
    "training --max-minutes $MINUTES"
  echo "steps: $(grep -ao 'step [0-9]*, epoch' "$OUT/train.txt" 2>/dev/null | tail -1 | grep -o '[0-9]*' || echo none)"
  grep -a '^averaged' "$OUT/train.txt" 2>/dev/null
  echo
  echo "data:   ${SYNTH[*]}"
  echo "train:  ${TRAIN[*]}"
  echo "stress: ${STRESS[*]} --method model --checkpoint $OUT/model.safetensors --device $DEVICE"
  echo
  echo "== stress suite: the model"
  cat "$OUT/stress.md" 2>/dev/null || echo "(none: see stress.txt)"
  echo
  echo "== stress suite: the difference key (the same suite)"
  cat "$WORK/dk/stress.md" 2>/dev/null || tail -5 "$WORK/dk.txt"
} >"$OUT/card.txt"
finish
