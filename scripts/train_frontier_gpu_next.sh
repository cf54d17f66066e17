#!/usr/bin/env bash
# The frontier rows still missing (#18), ready for the next GPU lease: parallel processes on one GPU, as rounds 3
# and 4 (benchmarks/results/frontier_full_frontier/gpu_logs/round3.sh, round4.sh) ran them.
#
#   scripts/train_frontier_gpu_next.sh OUT [flags added to every job]
#
# Needs, in the GPU machine's copy of the tree: the teacher and Multi30k under .gpu/ (teacher/, multi30k/) and,
# when the carrying machine has it, the converged d192-3+1 kd under .gpu/d192kd/kd (round 4's 5-minute kd continued
# on the CPU to early stopping: runs/ff_d192_continued, benchmarks/results/frontier_full_frontier_d192_continued/);
# scripts/prepare_gpu_carry.sh assembles .gpu/. Without it (a fresh machine does not have it) the plan first trains
# a d192 kd for 5 minutes beside kdseq, and the quantized rows start from that one with what is left of END.
# Its qd4 was trained on the CPU; what a GPU adds is rows too slow for 2 cores:
#   - d192-3+1 kdseq from scratch with 7 minutes (kd reached early stopping after about 18 epochs: 14 in 5 GPU
#     minutes, then 4 on the CPU), to compare sequence-level KD with a converged kd;
#   - d192-3+1 qd2 with buckets of 128 from the converged kd at seeds 0, 1 and 2, 2.5 minutes each: whether the
#     2-bit margin holds seed by seed once the start is converged (round 3/4's seeds started from a 2.5-minute kd);
#   - d192-3+1 dq2 with 5.5 minutes from the converged kd (round 4's 8 minutes ran past the lease).
# Wall-clock budgets on a shared GPU; END (default 540 s) stops what is unfinished. Every job writes under
# runs/ff_round5* so that no row of the committed frontier is replaced. Then, on the CPU (each with
# --extra_rows_shape none; copy the teacher row's file into each new results folder to skip rescoring it):
#   python scripts/benchmark_translation.py --budget full_frontier --shapes d192-3+1 --rows kdseq \
#       --output_dir runs/ff_round5_kdseq --results_dir benchmarks/results/frontier_full_frontier_round5
#   python scripts/benchmark_translation.py --budget full_frontier --shapes d192-3+1 --rows dq2 \
#       --output_dir runs/ff_round5_dq2 --results_dir benchmarks/results/frontier_full_frontier_round5
#   for seed in 0 1 2; do python scripts/benchmark_translation.py --budget full_frontier --shapes d192-3+1 \
#       --rows qd2 --bucket_size 128 --seed $seed --output_dir runs/ff_round5_b128_s$seed \
#       --results_dir benchmarks/results/frontier_full_frontier_round5_bucket128_seed$seed; done
# (and, when the plan trained its own kd, the same with --rows kd --output_dir runs/ff_round5_kd)
# The device call (carry [".gpu"]):
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .gpu/whl/*.whl .gpu/whl52/*.whl
#   export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
#   END=540 scripts/train_frontier_gpu_next.sh $OUT/next
set -u
out=$1; shift
mkdir -p "$out"
start=$(mktemp)
common=(--budget full_frontier --train_only true --teacher .gpu/teacher --dataset_dir .gpu/multi30k
        --extra_rows_shape none --disable_tqdm true --quant_epochs 20)
job() {
    local name=$1; shift
    # a results folder of its own: a committed row's results file would make the job skip that row
    OMP_NUM_THREADS=2 timeout $((${END:-540} - SECONDS)) python3 scripts/benchmark_translation.py "${common[@]}" \
        --results_dir "/tmp/unused_$name" "$@" >"$out/$name.log" 2>&1
    echo "$name: exit $? at $SECONDS s"
}
job d192-kdseq --output_dir runs/ff_round5_kdseq --shapes d192-3+1 --rows kdseq --kd_minutes 7 "$@" &
kd=.gpu/d192kd/kd qd_minutes=2.5 dq_minutes=5.5
if [ ! -f $kd/hfqd_trained.json ]; then
    echo "No carried d192-3+1 kd in .gpu/d192kd (scripts/prepare_gpu_carry.sh on the machine that has it):" \
         "training one for 5 minutes first; it builds the teacher cache." >&2
    job d192-kd --output_dir runs/ff_round5_kd --shapes d192-3+1 --rows kd --kd_minutes 5 "$@"
    kd=runs/ff_round5_kd/d192-3+1/kd
    # what is left of END, less a minute for the last validation and the packing: 1.5-minute qd2, 2-minute dq2
    qd_minutes=1.5 dq_minutes=2
fi
if [ ! -f $kd/hfqd_trained.json ]; then
    echo "No d192-3+1 kd to start from ($kd): the quantized rows are skipped." >&2
else
    for dir in runs/ff_round5_dq2 runs/ff_round5_b128_s{0,1,2}; do
        mkdir -p $dir/d192-3+1 && cp -rp $kd $dir/d192-3+1/
    done
    qd2() {
        job d192-qd2-b128-s$1 --output_dir runs/ff_round5_b128_s$1 --shapes d192-3+1 --rows qd2 --bucket_size 128 \
            --seed $1 --quant_minutes $qd_minutes "${@:2}"
    }
    qd2 0 "$@" &
    first=$!
    # the teacher cache of the training data is built once, by the first job that needs it (kdseq's is of the
    # teacher's translations: its own)
    for _ in $(seq 180); do
        grep -qs "Teacher cache .* on disk" "$out/d192-qd2-b128-s0.log" || ! kill -0 $first 2>/dev/null && break
        sleep 1
    done
    qd2 1 "$@" &
    qd2 2 "$@" &
    job d192-dq2 --output_dir runs/ff_round5_dq2 --shapes d192-3+1 --rows dq2 --quant_minutes $dq_minutes "$@" &
fi
wait
# the copies of the kd the quantized rows start from (a kd trained here is kept: runs/ff_round5_kd)
carried=(-not -path 'runs/ff_round5_dq2/d192-3+1/kd/*' -not -path 'runs/ff_round5_b128_s*/d192-3+1/kd/*')
rows=$(find runs -name hfqd_trained.json -newer "$start" "${carried[@]}" -printf '%h\n' | sort)
states=$(find runs -path '*-run*/checkpoint-*/trainer_state.json' -newer "$start" | sort -V)
# One tar with the logs, in 15 MB pieces: the device tool returns at most eight files a call.
[ -n "$rows$states" ] && tar cf - $rows $states "$out"/*.log | split -b 15M - "$out/rows.tar." && rm "$out"/*.log
ls -la "$out"
