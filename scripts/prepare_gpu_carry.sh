#!/usr/bin/env bash
# Assemble .gpu/, what a GPU lease carries (`run(..., carry=[".gpu"])`): the device machine has PyTorch with CUDA but
# no network, an older transformers and no datasets, and none of ../shared. Run on this machine, in the repository
# root, with the project's venv active; a fresh machine can build everything but the d192 kd row.
#
#   scripts/prepare_gpu_carry.sh
#
#   .gpu/teacher      the benchmark teacher (../shared/models/multi30k-en-de-marian-7.7m)
#   .gpu/multi30k     Multi30k train / val / test2016 / test2017
#   .gpu/whl          transformers, the version installed here (no dependencies: the image has the rest)
#   .gpu/whl52        datasets with dill and multiprocess, for the image's Python 3.12
#   .gpu/d192kd       a converged d192-3+1 kd row, which the next GPU plan starts its d192 rows from: kd/ (KD_ROW,
#                     default round 5's runs/ff_round5_kd/d192-3+1/kd, without its CTranslate2 folder or tokenizer), when this
#                     machine has it; without it the plan trains a d192 kd first and starts from that.
# .gpu is added to .git/info/exclude, so that it is never committed.
set -euo pipefail
shared=${SHARED:-../shared}  # where ../shared is, from the repository root
mkdir -p .gpu/multi30k
[ -d .gpu/teacher ] || cp -r "$shared/models/multi30k-en-de-marian-7.7m" .gpu/teacher
for split in train val test2016 test2017; do
    cp "$shared/data/multi30k/$split".{en,de} .gpu/multi30k/
done
version() { python -c "import importlib.metadata as m; print(m.version('$1'))"; }
python -m pip download -q --no-deps -d .gpu/whl "transformers==$(version transformers)"
python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 -d .gpu/whl52 \
    "datasets==$(version datasets)" "dill==$(version dill)" "multiprocess==$(version multiprocess)"
row=${KD_ROW:-runs/ff_round5_kd/d192-3+1/kd}
if [ -f "$row/hfqd_trained.json" ] && ! cmp -s "$row/hfqd_trained.json" .gpu/d192kd/kd/hfqd_trained.json; then
    rm -rf .gpu/d192kd && mkdir -p .gpu/d192kd/kd
    # the weights and configs: the rows trained from it save the frontier's tokenizer (and the carry limit is tight)
    find "$row" -maxdepth 1 -type f -not -name 'tokenizer*' -exec cp -p {} .gpu/d192kd/kd/ \;
fi
grep -qs "\.gpu" .git/info/exclude 2>/dev/null || echo ".gpu" >> .git/info/exclude
[ -d .gpu/d192kd ] || echo "No d192-3+1 kd row here ($row): the next GPU plan will train one first."
du -sh .gpu/*
