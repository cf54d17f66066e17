#!/usr/bin/env bash
# The frontier row still missing (#18), ready for the next GPU lease: dq2 given a lease with fewer jobs beside it
# (round 6's time budget ended it after 5 epochs). QD against QAT without a teacher, both from the shape's start,
# has seeds 0, 1 and 2 of each, trained the budget's 30 epochs on the 2-core CPU; FROM_START retrains rows of it.
#
#   scripts/train_frontier_gpu_next.sh OUT [flags added to every job]
#
# Needs, in the GPU machine's copy of the tree, the teacher and Multi30k under .gpu/ (teacher/, multi30k/) and,
# when the carrying machine has one, a converged d192-3+1 kd under .gpu/d192kd/kd (scripts/prepare_gpu_carry.sh
# assembles .gpu/; round 5's kd scores above the teacher). Steps, wall-clock budgets inside END (default 545 s):
#   0. DQ's step time against QD's on the GPU (scripts/benchmark_step_time.py --learned, at most 45 s);
#   1. without a carried kd: d192-3+1 kd alone on the GPU for KD_MINUTES (default 4.5), at most 30 epochs with
#      early stopping (patience 3); alone it ran 26 epochs in 264 s in round 5 and stopped early;
#   2. side by side (the first alone until it has built the teacher cache), each with what is left of END less a
#      minute for the last validation and the packing, early stopping on validation BLEU:
#      - the rows in FROM_START at seed 2 (default none; "qd2-scratch qat2-scratch" trains both on one
#        device): quantized from the shape's start with kd's settings (learning rate 2e-3, at most 30 epochs),
#        buckets of 128 and the tied embedding at 3 bits (the published 2-bit student's setting), every epoch up
#        to 30 and the best validation kept (no early stopping: patience 3 ended a CPU seed on a plateau); the kd
#        alone on the H100 ran 26 epochs in 264 s, so with jobs beside it the lease may end a row first;
#      - dq2 (learned points, AdamW) from the kd at the budget's settings (alone, dq2-sgd took about 75 s an epoch).
#      Round 6 ran eight jobs at once; these share the GPU and 16 cores.
# Every job writes under runs/$RUN* (RUN defaults to ff_round7) so that no row of the committed frontier is
# replaced; flags after OUT reach every job. Then, on the CPU, one scoring run per runs folder with the job's flags
# (as for round 6 in gpu_logs/COMMANDS.md); copy the teacher row's file into each new results folder to skip
# rescoring it, and the kd into each folder that starts from it.
# The device call (carry [".gpu"]):
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .gpu/whl/*.whl .gpu/whl52/*.whl
#   export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
#   END=545 scripts/train_frontier_gpu_next.sh $OUT/next
# Earlier rounds' plans are kept beside their logs (benchmarks/results/frontier_full_frontier/gpu_logs/round*.sh).
set -u
out=$1; shift
end=${END:-545}
run=${RUN:-ff_round7}
mkdir -p "$out"
start=$(mktemp)
common=(--budget full_frontier --train_only true --teacher .gpu/teacher --dataset_dir .gpu/multi30k
        --extra_rows_shape none --disable_tqdm true --quant_epochs 20)
job() {
    local name=$1; shift
    # a results folder of its own: a committed row's results file would make the job skip that row
    OMP_NUM_THREADS=2 timeout $((end - SECONDS)) python3 scripts/benchmark_translation.py "${common[@]}" \
        --results_dir "/tmp/unused_$name" "$@" >"$out/$name.log" 2>&1
    echo "$name: exit $? at $SECONDS s"
}
# DQ's training step against QD's on this GPU, since the learned quantizer's speed-up (at most 45 s; on the
# 2-core CPU it took DQ from 1.27x to 1.02x QD's step, benchmarks/results/step_time_dq*.md)
timeout 45 python3 scripts/benchmark_step_time.py --learned --shape d192-3+1 --bits 2 --bucket_size 128 \
    --teacher .gpu/teacher --dataset_dir .gpu/multi30k --output "$out/step_time_dq_gpu" >"$out/step_time.log" 2>&1
echo "step time: exit $? at $SECONDS s"
kd=.gpu/d192kd/kd
if [ ! -f $kd/hfqd_trained.json ]; then
    echo "No carried d192-3+1 kd in .gpu/d192kd: training one alone for ${KD_MINUTES:-4.5} minutes first." >&2
    job d192-kd --output_dir runs/${run}_kd --shapes d192-3+1 --rows kd --kd_minutes "${KD_MINUTES:-4.5}" "$@"
    kd=runs/${run}_kd/d192-3+1/kd
fi
minutes_left() {  # what is left of END in minutes, less one for the last validation past the budget and the packing
    python3 -c "print(round(max($end - $SECONDS - 60, 30) / 60, 2))"
}
copies=()
from_kd() {  # NAME FOLDER ROW [flags]: one row trained from a copy of the kd in runs/FOLDER, in the background
    local name=$1 folder=runs/$2 row=$3; shift 3
    local minutes=$(minutes_left)
    echo "$name: $minutes minutes from $kd"
    mkdir -p $folder/d192-3+1 && cp -rp $kd $folder/d192-3+1/ && copies+=("$folder/d192-3+1/kd")
    job $name --output_dir $folder --shapes d192-3+1 --rows $row --quant_minutes "$minutes" "$@" &
}
if [ ! -f $kd/hfqd_trained.json ]; then
    echo "No d192-3+1 kd to start from ($kd): the quantized rows are skipped." >&2
else
    emb3=(--bucket_size 128 --module_bits model.shared=3)
    from_start() {  # ROW SEED [flags]: quantized from the shape's start, with kd's budget set to what is left of END
        local minutes=$(minutes_left)
        echo "d192-$1-emb3-s$2: $minutes minutes from the start"
        job d192-$1-emb3-s$2 --output_dir runs/${run}_$1_emb3_s$2 --shapes d192-3+1 --rows $1 "${emb3[@]}" \
            --seed $2 --patience 100 --kd_minutes "$minutes" "${@:3}" &
    }
    for row in ${FROM_START-}; do
        from_start $row 2 "$@"
        # qd2-scratch builds the teacher cache (14 s alone on the H100) before the others start and would repeat it
        [ $row = qd2-scratch ] || continue
        for _ in $(seq 90); do ls cache/teacher_cache/*/cache.json >/dev/null 2>&1 && break; sleep 1; done
    done
    from_kd d192-dq2 ${run}_dq2 dq2 "$@"
fi
wait
# the rows trained here, less the copies of the kd the rows start from
rows=$(find runs -name hfqd_trained.json -newer "$start" -printf '%h\n' | sort \
       | grep -vxF -f <(printf '%s\n' "${copies[@]}" ''))
states=$(find runs -path '*-run*/checkpoint-*/trainer_state.json' -newer "$start" | sort -V)
# One tar with the logs, in 15 MB pieces: the device tool returns at most eight files a call.
[ -n "$rows$states" ] && tar cf - $rows $states "$out"/*.log | split -b 15M - "$out/rows.tar." && rm "$out"/*.log
ls -la "$out"
