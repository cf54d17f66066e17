#!/usr/bin/env bash
# Train frontier rows on a GPU machine, then pack them for the CPU machine that scores them.
#
#   scripts/train_frontier_gpu.sh OUT_DIR [benchmark_translation.py flags...]
#
# Runs `scripts/benchmark_translation.py --budget full_frontier --train_only true` with the given flags (shapes,
# rows, time budgets, teacher and data paths), so only training happens here: BLEU, CTranslate2 speed and size are
# measured where the students will be served, by the same command without --train_only, which scores the saved
# rows instead of training them again. OUT_DIR receives the trained rows (weights and hfqd_trained.json, without
# checkpoints) as a tar file cut into 15 MB pieces, each run's final trainer_state.json (validation BLEU per
# epoch) and the log. On the CPU machine:
#   cat OUT_DIR/rows.tar.* | tar xf - && python scripts/benchmark_translation.py --budget full_frontier [same flags]
set -uo pipefail
out=$1; shift
mkdir -p "$out"
budget_dir=runs/benchmark_translation_full_frontier
start=$(mktemp)  # rows and states newer than this were trained by this run (runs beside it pack their own)
python3 scripts/benchmark_translation.py --budget full_frontier --train_only true --output_dir "$budget_dir" "$@" \
    2>&1 | tee "$out/train.log"
status=${PIPESTATUS[0]}
# Whatever this run finished comes back, also after a failure or a time limit: a row folder is complete once its
# hfqd_trained.json exists. Rows it started from (a carried kd) stay behind.
rows=$(find "$budget_dir" -name hfqd_trained.json -newer "$start" -printf '%h\n' 2>/dev/null | sort)
states=$(find "$budget_dir" -path '*-run/checkpoint-*/trainer_state.json' -newer "$start" 2>/dev/null | sort -V)
if [ -n "$rows$states" ]; then
    tar cf - $rows $states | split -b 15M - "$out/rows.tar."
fi
ls -la "$out"
exit "$status"
