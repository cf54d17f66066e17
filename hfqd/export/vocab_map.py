"""Output shortlists for CTranslate2: a vocabulary map built from the training pairs.

Once a student's decoder has one layer, its output layer (a product with the whole target vocabulary at every step)
is most of the decoding cost. CTranslate2 can restrict that product, per batch, to the target tokens a vocabulary
map lists for the batch's source tokens (`translate_batch(..., use_vmap=True)`), as Bergamot's students do with
lexical shortlists. The map here is the simplest one that works from the data alone: for every source token, the
target tokens that co-occur with it most strongly across the training pairs (Dice coefficient of sentence
co-occurrence), plus the most frequent target tokens for every batch. Its BLEU cost must be measured
(`scripts/benchmark_vocab_map.py`): a token missing from a batch's list cannot be produced.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..utils import atomic_write_text


@dataclass
class CoOccurrence:
    """Sentence-level counts: how many pairs hold each source token, each target token, and each (source, target)."""

    source_counts: torch.Tensor  # [V]
    target_counts: torch.Tensor  # [V]
    pairs: torch.Tensor  # [P] keys source * V + target
    pair_counts: torch.Tensor  # [P]
    vocab_size: int


def count_cooccurrence(sources: list[str], targets: list[str], tokenizer, chunk: int = 4096) -> CoOccurrence:
    """Count which tokens appear together in the same pair (each token once per sentence)."""
    if len(sources) != len(targets):
        raise ValueError(f"{len(sources)} source sentences but {len(targets)} targets: the pairs are misaligned.")
    if not sources:
        raise ValueError("No training pairs to build a vocabulary map from.")
    size = len(tokenizer)
    source_counts = torch.zeros(size, dtype=torch.long)
    target_counts = torch.zeros(size, dtype=torch.long)
    keys, counts = [], []
    for start in range(0, len(sources), chunk):
        src = tokenizer(sources[start:start + chunk])["input_ids"]
        tgt = tokenizer(text_target=targets[start:start + chunk])["input_ids"]
        chunk_keys = []
        for s, t in zip(src, tgt):
            s, t = torch.tensor(s).unique(), torch.tensor(t).unique()
            source_counts[s] += 1
            target_counts[t] += 1
            chunk_keys.append((s[:, None] * size + t[None, :]).flatten())
        unique, count = torch.cat(chunk_keys).unique(return_counts=True)
        keys.append(unique)
        counts.append(count)
    unique, inverse = torch.cat(keys).unique(return_inverse=True)
    summed = torch.zeros(len(unique), dtype=torch.long).index_add_(0, inverse, torch.cat(counts))
    return CoOccurrence(source_counts, target_counts, unique, summed, size)


def vocab_map_lines(stats: CoOccurrence, tokenizer, per_token: int = 20, always: int = 100,
                    min_count: int = 2) -> list[str]:
    """Lines of a CTranslate2 vocabulary map: ``<source token>\\t<target candidates>``, and first the line with an
    empty source that lists the ``always`` most frequent target tokens (candidates for every batch)."""
    if per_token < 1 or always < 0:
        raise ValueError(f"per_token must be >= 1 and always >= 0 (got {per_token}, {always}).")
    size = stats.vocab_size
    keep = stats.pair_counts >= min_count
    keys, counts = stats.pairs[keep], stats.pair_counts[keep].double()
    source, target = keys // size, keys % size
    dice = 2 * counts / (stats.source_counts[source] + stats.target_counts[target]).double()
    order = torch.sort(-dice, stable=True).indices  # best first, then grouped by source token, keeping that order
    order = order[torch.sort(source[order], stable=True).indices]
    source, target = source[order], target[order]
    _, group_sizes = torch.unique_consecutive(source, return_counts=True)
    starts = torch.repeat_interleave(torch.cumsum(group_sizes, 0) - group_sizes, group_sizes)
    ranked = torch.arange(len(source)) - starts < per_token
    tokens = tokenizer.convert_ids_to_tokens(list(range(size)))
    usable = [not any(c.isspace() for c in token) for token in tokens]  # the file separates tokens by spaces
    frequent = [i for i in torch.argsort(stats.target_counts, descending=True)[:always].tolist() if usable[i]]
    lines = ["\t" + " ".join(tokens[i] for i in frequent)]
    candidates: dict[int, list[int]] = {}
    for s, t in zip(source[ranked].tolist(), target[ranked].tolist()):
        if usable[s] and usable[t]:
            candidates.setdefault(s, []).append(t)
    lines += [f"{tokens[s]}\t{' '.join(tokens[t] for t in ts)}" for s, ts in candidates.items()]
    return lines


def write_vocab_map(path: str, sources: list[str], targets: list[str], tokenizer, per_token: int = 20,
                    always: int = 100) -> str:
    """Build a vocabulary map from training pairs and write it to ``path`` (atomically); returns ``path``."""
    stats = count_cooccurrence(sources, targets, tokenizer)
    atomic_write_text(path, "\n".join(vocab_map_lines(stats, tokenizer, per_token, always)) + "\n")
    return path


__all__ = ["CoOccurrence", "count_cooccurrence", "vocab_map_lines", "write_vocab_map"]
