# Shell functions of the training recipes (training/recipes/cpu.sh and gpu.sh source this file).
# The trainer keeps one last.pth per run; these keep its recent versions for weight averaging (the model
# card's way to a shipping candidate: single checkpoints scatter at a constant learning rate).
# shellcheck shell=bash

# keep_new_checkpoint RUN KEEP: when RUN/last.pth is not yet among RUN/kept/, copy it there as
# <its modification time, epoch seconds>.pth and delete all but the newest KEEP copies.
keep_new_checkpoint() {
  local run=$1 keep=$2 stamp
  stamp=$(stat -c %Y "$run/last.pth" 2>/dev/null) || return 0
  mkdir -p "$run/kept"
  [ -e "$run/kept/$stamp.pth" ] && return 0
  # last.pth is replaced by a rename, never rewritten in place: an open copy reads one whole file
  cp "$run/last.pth" "$run/kept/.copying" && mv "$run/kept/.copying" "$run/kept/$stamp.pth" || return 1
  find "$run/kept" -maxdepth 1 -name '*.pth' | sort | head -n -"$keep" | xargs -r rm -f --
}

# keep_checkpoints RUN KEEP SECONDS: keep_new_checkpoint every SECONDS until killed (start it with &).
keep_checkpoints() {
  while true; do
    keep_new_checkpoint "$1" "$2"
    sleep "$3"
  done
}

# export_candidate PYTHON RUN OUT: the mean of RUN's kept checkpoints (else its last.pth) as fp16
# safetensors OUT; prints the training steps it averaged (python -m training.average).
export_candidate() {
  local kept
  mapfile -t kept < <(find "$2/kept" -maxdepth 1 -name '*.pth' 2>/dev/null | sort)
  [ ${#kept[@]} -gt 0 ] || kept=("$2/last.pth")
  "$1" -m training.average "${kept[@]}" --out "$3"
}
