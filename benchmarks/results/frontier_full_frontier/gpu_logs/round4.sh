#!/usr/bin/env bash
# The frontier rows still missing (#18), ready for the next GPU lease: parallel processes on one GPU, as round 3
# (benchmarks/results/frontier_full_frontier/gpu_logs/round3.sh) ran them.
#
#   scripts/train_frontier_gpu_next.sh OUT [flags added to every job]
#
# Needs, in the GPU machine's copy of the tree: the teacher and Multi30k under .gpu/ (teacher/, multi30k/) and the
# d192-3+1 kd row under runs/benchmark_translation_full_frontier/d192-3+1/kd (carry it; the d192 rows start from
# it; without it, round 2's 2.5-minute kd is trained first); scripts/prepare_gpu_carry.sh assembles .gpu/. Jobs
# (wall-clock budgets on a shared GPU; END, default 530 s, stops what is unfinished):
#   - d192-3+1 kdseq: sequence-level KD (the teacher's beam-4 translations of the training set, then token-level
#     KD under them), against kd's token-level KD at the same shape, both with 5 minutes side by side;
#   - d128-2+1 kd with 5 minutes (round 3's 3 minutes left it rising), then its qd4 and qd2;
#   - d192-3+1 qd2 with buckets of 128 at seeds 1 and 2: whether the 2-bit target survives reruns;
#   - d192-3+1 dq2 with 8 minutes (round 3's 5 gave it two epochs: bit allocation makes its steps slow).
# Then, on the CPU: the scoring commands in gpu_logs/COMMANDS.md with the same shapes, rows and flags.
# The device call that ran round 3 (carry [".gpu"], .gpu/d192kd being the kd row without its CT2 folder):
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .gpu/whl/*.whl .gpu/whl52/*.whl
#   export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
#   mkdir -p runs/benchmark_translation_full_frontier/d192-3+1
#   [ -d .gpu/d192kd ] && cp -rp .gpu/d192kd runs/benchmark_translation_full_frontier/d192-3+1/kd
#   END=515 scripts/train_frontier_gpu_next.sh $OUT/next
set -u
out=$1; shift
mkdir -p "$out"
budget_dir=runs/benchmark_translation_full_frontier
rows_dir=benchmarks/results/frontier_full_frontier/rows
start=$(mktemp)
common=(--budget full_frontier --train_only true --teacher .gpu/teacher --dataset_dir .gpu/multi30k
        --extra_rows_shape none --disable_tqdm true --quant_epochs 20 --kd_minutes 5 --quant_minutes 3)
job() {
    local name=$1; shift
    OMP_NUM_THREADS=2 timeout $((${END:-530} - SECONDS)) python3 scripts/benchmark_translation.py "${common[@]}" "$@" \
        >"$out/$name.log" 2>&1
    echo "$name: exit $? at $SECONDS s"
}
# The d128 rows are trained again with a longer kd (a scored row is otherwise skipped).
rm -f "$rows_dir"/d128-2+1__*.json
job d192-kdseq --output_dir "$budget_dir" --shapes d192-3+1 --rows kdseq "$@" &
first=$!
for _ in $(seq 180); do  # the teacher cache is built once, by the first job
    grep -qs "Teacher cache .* on disk" "$out/d192-kdseq.log" || ! kill -0 $first 2>/dev/null && break
    sleep 1
done
# kdseq's like-for-like: token-level kd at the same shape, with the same budget, on the same shared GPU.
job d192-kd-5min --output_dir runs/ff_kd_5min --results_dir /tmp/unused_kd5 --shapes d192-3+1 --rows kd "$@" &
{
    job d128-kd --output_dir "$budget_dir" --shapes d128-2+1 --rows kd "$@"
    job d128-qd4 --output_dir "$budget_dir" --shapes d128-2+1 --rows qd4 "$@" &
    job d128-qd2 --output_dir "$budget_dir" --shapes d128-2+1 --rows qd2 "$@" &
    wait
} &
if [ ! -f "$budget_dir/d192-3+1/kd/hfqd_trained.json" ]; then  # a fresh machine had no kd row to carry: round 2's kd
    # first (dq2's 8 minutes then overrun END: its checkpoints come back, its row does not)
    job d192-kd --output_dir "$budget_dir" --results_dir /tmp/unused_kd --shapes d192-3+1 --rows kd \
        --kd_minutes 2.5 "$@"  # its committed scores would skip it
fi
for seed in 1 2; do
    mkdir -p runs/ff_b128_s$seed/d192-3+1 && cp -rp "$budget_dir/d192-3+1/kd" runs/ff_b128_s$seed/d192-3+1/
    job "d192-qd2-b128-s$seed" --output_dir runs/ff_b128_s$seed --results_dir /tmp/unused_s$seed --shapes d192-3+1 \
        --rows qd2 --bucket_size 128 --seed $seed "$@" &
done
mkdir -p runs/ff_dq2_8min/d192-3+1 && cp -rp "$budget_dir/d192-3+1/kd" runs/ff_dq2_8min/d192-3+1/
job d192-dq2-8min --output_dir runs/ff_dq2_8min --results_dir /tmp/unused_dq2 --shapes d192-3+1 --rows dq2 \
    --quant_minutes 8 "$@" &
wait
copies=(-not -path 'runs/ff_b128_s*/d192-3+1/kd/*' -not -path 'runs/ff_dq2_8min/d192-3+1/kd/*')  # of the d192 kd
rows=$(find runs -name hfqd_trained.json -newer "$start" "${copies[@]}" -printf '%h\n' | sort)
states=$(find runs -path '*-run/checkpoint-*/trainer_state.json' -newer "$start" | sort -V)
# One tar with the logs, in 15 MB pieces: the device tool returns at most eight files a call.
[ -n "$rows$states" ] && tar cf - $rows $states "$out"/*.log | split -b 15M - "$out/rows.tar." && rm "$out"/*.log
ls -la "$out"
