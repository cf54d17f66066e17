"""Deployment measurements: interleaved decoding speed of two engines or models, and peak memory of CTranslate2.

A busy machine slows whatever runs while it is busy. Timing a teacher once and a student later lets load on the
machine fake a speed-up (a rerun under load once timed the teacher at 7.9 sentences/s and called a student "37x
faster"). Here the candidates are timed in turn, A, B, A, B, ..., each one's median is kept, and the clock is this
process's CPU time: with one compute thread per engine, other processes' load does not count against a candidate
(wall-clock time, which it does, is kept beside it).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from typing import Callable


def interleaved_rates(runs: dict[str, Callable[[], int]], repeats: int = 3) -> dict[str, dict[str, float]]:
    """Items per CPU-second and per wall-clock second of each callable (which returns how many items it
    processed), timed in turn for ``repeats`` rounds, median per callable. Each runs once untimed first (warm-up).

    Returns ``{name: {"cpu": items per CPU-second, "wall": items per second}}``.
    """
    for run in runs.values():
        run()
    rates: dict[str, dict[str, list[float]]] = {name: {"cpu": [], "wall": []} for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            cpu, wall = time.process_time(), time.perf_counter()
            items = run()
            rates[name]["cpu"].append(items / max(time.process_time() - cpu, 1e-9))
            rates[name]["wall"].append(items / (time.perf_counter() - wall))
    return {name: {k: statistics.median(v) for k, v in clocks.items()} for name, clocks in rates.items()}


# Runs in a fresh process with only what serving needs (ctranslate2 and the tokenizer library; no torch, no
# transformers, no hfqd), so its peak memory is the deployment's, not the benchmark's.
_RSS_PROBE = """
import json, os, sys
import ctranslate2
folder, batch, threads, length = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
sources = sorted(json.loads(sys.stdin.read()), key=len)
if os.path.isfile(os.path.join(folder, "tokenizer.json")):
    from tokenizers import Tokenizer
    tokenizer = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
    tokenize = lambda texts: [e.tokens for e in tokenizer.encode_batch(texts)]
else:  # OPUS-MT layout: sentencepiece source model, </s> appended as MarianTokenizer does
    import sentencepiece
    sp = sentencepiece.SentencePieceProcessor(model_file=os.path.join(folder, "source.spm"))
    tokenize = lambda texts: [sp.encode(t, out_type=str) + ["</s>"] for t in texts]
def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
before = status("VmRSS")
with open("/proc/self/clear_refs", "w") as f:  # reset the peak (VmHWM), so it covers loading and translating only
    f.write("5")
translator = ctranslate2.Translator(folder, intra_threads=threads)
for start in range(0, len(sources), batch):
    translator.translate_batch(tokenize(sources[start:start + batch]), beam_size=1, max_decoding_length=length)
print(json.dumps({"peak_rss_mb": status("VmHWM"), "before_model_mb": before}))
"""


def ctranslate2_peak_rss_mb(folder: str, sources: list[str], batch_size: int = 32, threads: int = 1,
                            max_length: int = 256) -> dict:
    """Peak resident memory (MB, Linux `VmHWM`) of a fresh process while it loads a CTranslate2 folder and
    translates ``sources`` (greedy, at most ``max_length`` tokens: no more than the model has positions for), and
    its resident memory before the model was loaded (Python, ctranslate2 and the tokenizer library), so the model's
    own share can be told apart."""
    result = subprocess.run(
        [sys.executable, "-c", _RSS_PROBE, folder, str(batch_size), str(threads), str(max_length)],
        input=json.dumps(sources),
        capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": str(threads)}, timeout=1800,
    )
    if result.returncode != 0:
        raise RuntimeError(f"Measuring CTranslate2 memory failed: {result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def folder_bytes(folder: str) -> int:
    """Bytes of every file under ``folder``."""
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(folder) for f in files)


def folder_megabytes(folder: str) -> float:
    """Size of every file under ``folder`` (MB)."""
    return folder_bytes(folder) / 1e6
