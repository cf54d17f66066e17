#!/usr/bin/env bash
# The frontier rows still missing (#18), ready for the next GPU lease: whether the 2-bit margin holds seed by seed
# once the quantized rows start from a converged kd.
#
#   scripts/train_frontier_gpu_next.sh OUT [flags added to every job]
#
# Needs, in the GPU machine's copy of the tree, the teacher and Multi30k under .gpu/ (teacher/, multi30k/) and,
# when the carrying machine has one, a converged d192-3+1 kd under .gpu/d192kd/kd (scripts/prepare_gpu_carry.sh
# assembles .gpu/). Steps, wall-clock budgets inside END (default 545 s):
#   1. without a carried kd: d192-3+1 kd alone on the GPU for KD_MINUTES (default 4.5), at most 30 epochs with
#      early stopping (patience 3). Alone it runs about twice as fast as among round 4's eight jobs (15 epochs in
#      156 s in round 2 against 14 in 304 s), so it gets near the converged kd's 18 epochs; it builds the teacher
#      cache;
#   2. d192-3+1 qd2 with buckets of 128 at seeds 0, 1 and 2 from that kd, side by side, each with what is left of
#      END less a minute for the last validation and the packing (round 3's seed 0 started from a 2.5-minute kd,
#      round 4's seeds 1 and 2 from the same kd among eight jobs; the converged kd's CPU run had three epochs).
# kdseq and dq2 are not in it: kdseq was measured near convergence on the CPU (frontier_full_frontier_kdseq_cpu),
# and dq2's slow steps would share the GPU with the seeds. Every job writes under runs/$RUN* (RUN defaults to
# ff_round5) so that no row of the committed frontier is replaced; flags after OUT reach every job (for example
# RUN=ff_round5_lr1e-4 with --quant_learning_rate 1e-4). Then, on the CPU (the same flags; copy the teacher row's
# file into each new results folder to skip rescoring it):
#   python scripts/benchmark_translation.py --budget full_frontier --shapes d192-3+1 --rows kd \
#       --extra_rows_shape none --output_dir runs/${RUN}_kd --results_dir benchmarks/results/frontier_full_frontier_round5
#   for seed in 0 1 2; do python scripts/benchmark_translation.py --budget full_frontier --shapes d192-3+1 \
#       --rows qd2 --bucket_size 128 --seed $seed --extra_rows_shape none --output_dir runs/${RUN}_b128_s$seed \
#       --results_dir benchmarks/results/frontier_full_frontier_round5_bucket128_seed$seed; done
# The device call (carry [".gpu"]):
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .gpu/whl/*.whl .gpu/whl52/*.whl
#   export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
#   END=545 scripts/train_frontier_gpu_next.sh $OUT/next
# Round 5 ran that, then the seeds again with --quant_learning_rate 1e-4 (gpu_logs/COMMANDS.md). Next, with round
# 5's kd carried (.gpu/d192kd), the same three seeds with the tied embedding at 3 bits (22.2x smaller; its one CPU
# run is README's "embedding at 3 bits"), each with about 8 minutes:
#   RUN=ff_round6_emb3 END=545 scripts/train_frontier_gpu_next.sh $OUT/next --module_bits model.shared=3 \
#       --quant_learning_rate 1e-4
set -u
out=$1; shift
end=${END:-545}
run=${RUN:-ff_round5}
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
if [ ! -f $kd/hfqd_trained.json ]; then
    echo "No d192-3+1 kd to start from ($kd): the quantized rows are skipped." >&2
else
    # what is left of END, less a minute for the last validation past the budget and the packing
    qd_minutes=$(python3 -c "print(round(max($end - $SECONDS - 60, 30) / 60, 2))")
    echo "qd2 seeds: $qd_minutes minutes each, from $kd"
    for seed in 0 1 2; do
        mkdir -p runs/${run}_b128_s$seed/d192-3+1 && cp -rp $kd runs/${run}_b128_s$seed/d192-3+1/
        job d192-qd2-b128-s$seed --output_dir runs/${run}_b128_s$seed --shapes d192-3+1 --rows qd2 \
            --bucket_size 128 --seed $seed --quant_minutes "$qd_minutes" "$@" &
    done
fi
wait
# the rows trained here, less the copies of the kd the seeds start from
rows=$(find runs -name hfqd_trained.json -newer "$start" -not -path "runs/${run}_b128_s*/d192-3+1/kd/*" \
       -printf '%h\n' | sort)
states=$(find runs -path '*-run*/checkpoint-*/trainer_state.json' -newer "$start" | sort -V)
# One tar with the logs, in 15 MB pieces: the device tool returns at most eight files a call.
[ -n "$rows$states" ] && tar cf - $rows $states "$out"/*.log | split -b 15M - "$out/rows.tar." && rm "$out"/*.log
ls -la "$out"
