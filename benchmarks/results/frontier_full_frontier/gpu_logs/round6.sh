#!/usr/bin/env bash
# The frontier rows still missing (#18), ready for the next GPU lease: the d192-3+1 column rebuilt from one
# converged kd, the 2-bit student with a 3-bit embedding trained alike at three seeds.
#
#   scripts/train_frontier_gpu_next.sh OUT [flags added to every job]
#
# Needs, in the GPU machine's copy of the tree, the teacher and Multi30k under .gpu/ (teacher/, multi30k/) and,
# when the carrying machine has one, a converged d192-3+1 kd under .gpu/d192kd/kd (scripts/prepare_gpu_carry.sh
# assembles .gpu/; round 5's kd scores above the teacher). Steps, wall-clock budgets inside END (default 545 s):
#   1. without a carried kd: d192-3+1 kd alone on the GPU for KD_MINUTES (default 4.5), at most 30 epochs with
#      early stopping (patience 3); alone it ran 26 epochs in 264 s in round 5 and stopped early;
#   2. from that kd, side by side (the first alone until it has built the teacher cache), each with what is left
#      of END less a minute for the last validation and the packing, at most 20 epochs with early stopping:
#      - qd2 with buckets of 128, the tied embedding at 3 bits, learning rate 1e-4, at seeds 0, 1 and 2 (one CPU
#        run of it met the 2-bit target: README, "embedding at 3 bits");
#      - qat2 with the same settings, no teacher (QD against QAT at the row that is published);
#      - qd4 at the budget's settings (buckets of 256, learning rate 3e-4), as the table's qd4 rows, at seeds 0, 1
#        and 2 (the 4-bit target seed by seed);
#      - dq2 (learned points, AdamW), the budget's settings (dq2-sgd stays round 3's: the two were alike there).
#      Round 4 ran eight jobs at once, each at about half the speed of one alone; so do these.
# pm4 and pm2 need no training: the CPU scoring run makes them from the same kd. Every job writes under runs/$RUN*
# (RUN defaults to ff_round6) so that no row of the committed frontier is replaced; flags after OUT reach every job.
# Then, on the CPU, one scoring run per runs folder with the job's flags (gpu_logs/COMMANDS.md, "Round 6"); copy
# the teacher row's file into each new results folder to skip rescoring it, and the kd into each folder.
# The device call (carry [".gpu"]):
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .gpu/whl/*.whl .gpu/whl52/*.whl
#   export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
#   END=545 scripts/train_frontier_gpu_next.sh $OUT/next
# Earlier rounds' plans are kept beside their logs (benchmarks/results/frontier_full_frontier/gpu_logs/round*.sh).
set -u
out=$1; shift
end=${END:-545}
run=${RUN:-ff_round6}
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
kd=.gpu/d192kd/kd
if [ ! -f $kd/hfqd_trained.json ]; then
    echo "No carried d192-3+1 kd in .gpu/d192kd: training one alone for ${KD_MINUTES:-4.5} minutes first." >&2
    job d192-kd --output_dir runs/${run}_kd --shapes d192-3+1 --rows kd --kd_minutes "${KD_MINUTES:-4.5}" "$@"
    kd=runs/${run}_kd/d192-3+1/kd
fi
copies=()
from_kd() {  # NAME FOLDER ROW [flags]: one row trained from a copy of the kd in runs/FOLDER, in the background
    local name=$1 folder=runs/$2 row=$3; shift 3
    # what is left of END, less a minute for the last validation past the budget and the packing
    local minutes=$(python3 -c "print(round(max($end - $SECONDS - 60, 30) / 60, 2))")
    echo "$name: $minutes minutes from $kd"
    mkdir -p $folder/d192-3+1 && cp -rp $kd $folder/d192-3+1/ && copies+=("$folder/d192-3+1/kd")
    job $name --output_dir $folder --shapes d192-3+1 --rows $row --quant_minutes "$minutes" "$@" &
}
if [ ! -f $kd/hfqd_trained.json ]; then
    echo "No d192-3+1 kd to start from ($kd): the quantized rows are skipped." >&2
else
    emb3=(--bucket_size 128 --module_bits model.shared=3 --quant_learning_rate 1e-4)
    from_kd d192-qd2-emb3-s0 ${run}_emb3_s0 qd2 "${emb3[@]}" --seed 0 "$@"
    # one process builds the teacher cache (14 s alone on the H100) before the others start and would repeat it
    for _ in $(seq 90); do ls cache/teacher_cache/*/cache.json >/dev/null 2>&1 && break; sleep 1; done
    for seed in 1 2; do
        from_kd d192-qd2-emb3-s$seed ${run}_emb3_s$seed qd2 "${emb3[@]}" --seed $seed "$@"
    done
    from_kd d192-qat2-emb3 ${run}_qat2_emb3 qat2 "${emb3[@]}" "$@"
    for seed in 0 1 2; do
        from_kd d192-qd4-s$seed ${run}_qd4_s$seed qd4 --seed $seed "$@"
    done
    from_kd d192-dq2 ${run}_dq2 dq2 "$@"
fi
wait
# the rows trained here, less the copies of the kd the rows start from
rows=$(find runs -name hfqd_trained.json -newer "$start" -printf '%h\n' | sort | grep -vxF -f <(printf '%s\n' "${copies[@]}" ''))
states=$(find runs -path '*-run*/checkpoint-*/trainer_state.json' -newer "$start" | sort -V)
# One tar with the logs, in 15 MB pieces: the device tool returns at most eight files a call.
[ -n "$rows$states" ] && tar cf - $rows $states "$out"/*.log | split -b 15M - "$out/rows.tar." && rm "$out"/*.log
ls -la "$out"
