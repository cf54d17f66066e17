#!/usr/bin/env bash
# Round 3 of the full_frontier GPU training: the rows still missing, as parallel processes on one GPU.
#
#   benchmarks/results/frontier_full_frontier/gpu_logs/round3.sh OUT [flags added to every job]
#
# Run from the repository root of the GPU machine, with the d192-3+1 kd row of round 2 in place under
# runs/benchmark_translation_full_frontier (the d192 rows start from it) and the teacher and Multi30k under .gpu/.
# Each job is what `scripts/train_frontier_gpu.sh` runs (`--train_only`), logging to OUT/<job>.log; at the end
# (or at END seconds, default 530, when unfinished jobs are stopped) the rows trained here are packed into OUT as
# that script packs them. Students this small leave an H100 idle between kernel launches, so separate processes
# train side by side; each row's time budget is wall-clock, so a row here gets fewer epochs per minute than alone
# (its hfqd_trained.json says how many it had).
set -u
out=$1; shift
mkdir -p "$out"
budget_dir=runs/benchmark_translation_full_frontier
start=$(mktemp)
common=(--budget full_frontier --train_only true --output_dir "$budget_dir" --teacher .gpu/teacher
        --dataset_dir .gpu/multi30k --extra_rows_shape none --disable_tqdm true --quant_epochs 20 --kd_minutes 3
        --quant_minutes 2.5)
job() {
    local name=$1; shift
    OMP_NUM_THREADS=2 timeout $((${END:-530} - SECONDS)) python3 scripts/benchmark_translation.py "${common[@]}" "$@" \
        >"$out/$name.log" 2>&1
    echo "$name: exit $? at $SECONDS s"
}
# d192-3+1 qd2 is trained again with a longer budget (round 2 gave it one minute; its validation BLEU still rose).
rm -rf benchmarks/results/frontier_full_frontier/rows/d192-3+1__qd2.json \
    runs/benchmark_translation_full_frontier/d192-3+1/qd2 runs/benchmark_translation_full_frontier/d192-3+1/qd2-run
job d192-qd2 --shapes d192-3+1 --rows qd2 --quant_minutes 5 "$@" &
first=$!
# The teacher cache is built once, by the first job; the others start when it is on disk.
for _ in $(seq 180); do
    grep -qs "Teacher cache .* on disk" "$out/d192-qd2.log" || ! kill -0 $first 2>/dev/null && break
    sleep 1
done
for row in qat2 dq2 dq2-sgd; do
    job "d192-$row" --shapes d192-3+1 --rows "$row" --quant_minutes 5 "$@" &
done
job d192-qd4-scratch --shapes d192-3+1 --rows qd4-scratch --kd_minutes 5 "$@" &
{
    job d128-kd --shapes d128-2+1 --rows kd "$@"
    job d128-qd4 --shapes d128-2+1 --rows qd4 "$@" &
    job d128-qd2 --shapes d128-2+1 --rows qd2 "$@" &
    wait
} &
wait
rows=$(find "$budget_dir" -name hfqd_trained.json -newer "$start" -printf '%h\n' | sort)
states=$(find "$budget_dir" -path '*-run/checkpoint-*/trainer_state.json' -newer "$start" | sort -V)
[ -n "$rows$states" ] && tar cf - $rows $states | split -b 15M - "$out/rows.tar."
ls -la "$out"
