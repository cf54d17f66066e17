#!/usr/bin/env bash
# The frontier rows still missing (#18), ready for the next GPU lease: parallel processes on one GPU, as rounds 3
# and 4 (benchmarks/results/frontier_full_frontier/gpu_logs/round3.sh, round4.sh) ran them.
#
#   scripts/train_frontier_gpu_next.sh OUT [flags added to every job]
#
# Needs, in the GPU machine's copy of the tree: the teacher and Multi30k under .gpu/ (teacher/, multi30k/) and the
# d192-3+1 kd row of round 2 under runs/benchmark_translation_full_frontier/d192-3+1/kd (carry it: dq2 starts from
# it, as the d192 qd2, qat2 and dq2 rows of the frontier did); scripts/prepare_gpu_carry.sh assembles .gpu/.
# Round 4 found kd still rising after 5 minutes (14 epochs) at d192 and d128; this round asks whether it levels off.
# Jobs (wall-clock budgets on a shared GPU; END, default 530 s, stops what is unfinished):
#   - d192-3+1 kd and kdseq with 7 minutes each, side by side: kd's convergence at that shape, and sequence-level KD
#     against it at the same, longer budget (round 4 had both at 5 minutes: 34.8 and 34.5 validation BLEU);
#   - d128-2+1 kd with 7 minutes (round 3 had 3, round 4 had 5);
#   - d192-3+1 qd4-scratch with kd's 7 minutes (round 3 had 5);
#   - d192-3+1 dq2 with 5.5 minutes from the carried kd (round 4's 8 minutes ran past the lease among eight jobs).
# Every job writes under runs/ff_round5 (dq2 under runs/ff_round5_dq2, beside its kd), so that no row of the
# committed frontier is replaced. Then, on the CPU:
#   python scripts/benchmark_translation.py --budget full_frontier --shapes d192-3+1 d128-2+1 --rows kd \
#       --extra_rows kdseq qd4-scratch --extra_rows_shape d192-3+1 --output_dir runs/ff_round5 \
#       --results_dir benchmarks/results/frontier_full_frontier_round5
#   python scripts/benchmark_translation.py --budget full_frontier --shapes d192-3+1 --rows dq2 \
#       --extra_rows_shape none --output_dir runs/ff_round5_dq2 --results_dir benchmarks/results/frontier_full_frontier_round5
# The device call (carry [".gpu"]; .gpu/d192kd is the kd row without its CT2 folder):
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .gpu/whl/*.whl .gpu/whl52/*.whl
#   export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
#   mkdir -p runs/ff_round5_dq2/d192-3+1 && cp -rp .gpu/d192kd runs/ff_round5_dq2/d192-3+1/kd
#   END=540 scripts/train_frontier_gpu_next.sh $OUT/next
set -u
out=$1; shift
mkdir -p "$out"
dir=runs/ff_round5
start=$(mktemp)
common=(--budget full_frontier --train_only true --teacher .gpu/teacher --dataset_dir .gpu/multi30k
        --extra_rows_shape none --disable_tqdm true --quant_epochs 20 --kd_minutes 7)
job() {
    local name=$1; shift
    OMP_NUM_THREADS=2 timeout $((${END:-530} - SECONDS)) python3 scripts/benchmark_translation.py "${common[@]}" "$@" \
        >"$out/$name.log" 2>&1
    echo "$name: exit $? at $SECONDS s"
}
job d192-kdseq --output_dir "$dir" --results_dir /tmp/unused_kdseq --shapes d192-3+1 --rows kdseq "$@" &
first=$!
for _ in $(seq 180); do  # the teacher cache is built once, by the first job
    grep -qs "Teacher cache .* on disk" "$out/d192-kdseq.log" || ! kill -0 $first 2>/dev/null && break
    sleep 1
done
# kd writes runs/ff_round5/d192-3+1/kd; dq2 starts from round 2's kd, in its own folder (without it, dq2 would
# train a kd first and overrun the lease: skipped).
if [ -f runs/ff_round5_dq2/d192-3+1/kd/hfqd_trained.json ]; then
    job d192-dq2 --output_dir runs/ff_round5_dq2 --results_dir /tmp/unused_dq2 --shapes d192-3+1 --rows dq2 \
        --quant_minutes 5.5 "$@" &
else
    echo "d192-dq2: skipped, no carried kd row in runs/ff_round5_dq2/d192-3+1/kd"
fi
job d192-kd --output_dir "$dir" --results_dir /tmp/unused_kd --shapes d192-3+1 --rows kd "$@" &
job d128-kd --output_dir "$dir" --results_dir /tmp/unused_kd128 --shapes d128-2+1 --rows kd "$@" &
job d192-qd4-scratch --output_dir "$dir" --results_dir /tmp/unused_scratch --shapes d192-3+1 --rows qd4-scratch "$@" &
wait
rows=$(find runs -name hfqd_trained.json -newer "$start" -not -path 'runs/ff_round5_dq2/d192-3+1/kd/*' -printf '%h\n' | sort)
states=$(find runs -path '*-run/checkpoint-*/trainer_state.json' -newer "$start" | sort -V)
# One tar with the logs, in 15 MB pieces: the device tool returns at most eight files a call.
[ -n "$rows$states" ] && tar cf - $rows $states "$out"/*.log | split -b 15M - "$out/rows.tar." && rm "$out"/*.log
ls -la "$out"
