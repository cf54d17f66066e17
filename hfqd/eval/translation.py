"""Translation quality (sacreBLEU BLEU and chrF on detokenized text) and decoding speed."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import sacrebleu
import torch
from sacrebleu.significance import PairedTest
from torch import nn
from tqdm.auto import tqdm


def corpus_scores(hypotheses: list[str], references: list[str]) -> dict[str, float]:
    """sacreBLEU BLEU (default 13a tokenization, cased) and chrF of detokenized hypotheses."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references.")
    if not references:
        raise ValueError("No references to score against.")
    return {
        "bleu": sacrebleu.corpus_bleu(hypotheses, [references]).score,
        "chrf": sacrebleu.corpus_chrf(hypotheses, [references]).score,
    }


def bleu_difference_p_value(baseline: list[str], system: list[str], references: list[str],
                            samples: int = 1000) -> float:
    """p-value of the BLEU difference between two systems on the same sentences (sacreBLEU's paired bootstrap
    resampling, its fixed seed): how often resampled test sets show a difference at least as large by chance. A
    difference with p well above 0.05 is within what the test set can tell apart."""
    if not (len(baseline) == len(system) == len(references)):
        raise ValueError(f"{len(baseline)} and {len(system)} hypotheses for {len(references)} references.")
    test = PairedTest([("baseline", baseline), ("system", system)], {"BLEU": sacrebleu.metrics.BLEU()},
                      [references], test_type="bs", n_samples=samples)
    return float(test()[1]["BLEU"][1].p_value)


def bleu_signature() -> str:
    """sacreBLEU's signature of the BLEU that :func:`corpus_scores` computes (for results headers)."""
    bleu = sacrebleu.metrics.BLEU()
    bleu.corpus_score(["a"], [["a"]])  # the signature records the reference count once a score was computed
    return str(bleu.get_signature())


def moses_tokenize(texts: list[str], lang: str) -> list[str]:
    """Lowercase, normalise punctuation and Moses-tokenize, as the official Multi30k `tok/` files were made
    (lowercase.perl, normalize-punctuation.perl, tokenizer.perl with its default escaping; needs `sacremoses`)."""
    try:
        from sacremoses import MosesPunctNormalizer, MosesTokenizer
    except ImportError as err:
        raise ImportError("Tokenized BLEU needs sacremoses: pip install sacremoses (in hfqd's bench extra).") from err
    normalizer, tokenizer = MosesPunctNormalizer(lang=lang), MosesTokenizer(lang=lang)
    return [tokenizer.tokenize(normalizer.normalize(t.lower()), return_str=True, escape=True) for t in texts]


def tokenized_bleu(hypotheses: list[str], references: list[str], lang: str) -> float:
    """Tokenized, lowercased BLEU, the variant older Multi30k papers report (multi-bleu on `tok/` files).

    Both sides go through :func:`moses_tokenize`, which reproduces the official tokenized references exactly, and
    are scored by sacreBLEU without further tokenization. Not comparable with :func:`corpus_scores`' BLEU.
    """
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references.")
    hyps, refs = moses_tokenize(hypotheses, lang), moses_tokenize(references, lang)
    return sacrebleu.corpus_bleu(hyps, [refs], tokenize="none").score


@torch.no_grad()
def translate(
    model: nn.Module,
    tokenizer,
    sources: list[str],
    batch_size: int = 64,
    num_beams: int = 1,
    max_new_tokens: int = 128,
    max_source_length: int = 128,
) -> list[str]:
    """Translate ``sources`` in length-sorted batches; returns detokenized strings in input order."""
    model.eval()
    device = next(model.parameters()).device
    order = sorted(range(len(sources)), key=lambda i: len(sources[i]))
    out: list[str] = [""] * len(sources)
    batches = range(0, len(order), batch_size)
    for start in tqdm(batches, desc=f"translating (beam {num_beams})", unit="batch", leave=False,
                      disable=len(batches) < 4):
        idx = order[start : start + batch_size]
        enc = tokenizer(
            [sources[i] for i in idx], return_tensors="pt", padding=True, truncation=True, max_length=max_source_length
        ).to(device)
        generated = model.generate(**enc, num_beams=num_beams, max_new_tokens=max_new_tokens, do_sample=False)
        for i, text in zip(idx, tokenizer.batch_decode(generated, skip_special_tokens=True)):
            out[i] = text.strip()
    return out


@dataclass
class SpeedReport:
    sentences_per_second: float
    batch_size: int
    sentences: int


def decode_speed(model: nn.Module, tokenizer, sources: list[str], batch_size: int, num_beams: int = 1,
                 max_new_tokens: int = 128) -> SpeedReport:
    """Sentences per second of :func:`translate` at ``batch_size``, tokenization and detokenization included
    (one warm-up batch not timed)."""
    translate(model, tokenizer, sources[:batch_size], batch_size, num_beams, max_new_tokens)
    start = time.perf_counter()
    translate(model, tokenizer, sources, batch_size, num_beams, max_new_tokens)
    return SpeedReport(len(sources) / (time.perf_counter() - start), batch_size, len(sources))


def make_compute_metrics(tokenizer):
    """`compute_metrics` for `Seq2SeqTrainer(predict_with_generate=True)`: BLEU and chrF on decoded text."""

    def compute_metrics(eval_preds) -> dict[str, float]:
        preds, labels = eval_preds
        if isinstance(preds, tuple):
            preds = preds[0]
        pad = tokenizer.pad_token_id
        preds = np.where(preds < 0, pad, preds)
        labels = np.where(labels < 0, pad, labels)
        hyps = [t.strip() for t in tokenizer.batch_decode(preds, skip_special_tokens=True)]
        refs = [t.strip() for t in tokenizer.batch_decode(labels, skip_special_tokens=True)]
        return corpus_scores(hyps, refs)

    return compute_metrics


def translate_ctranslate2(
    translator,
    tokenizer,
    sources: list[str],
    batch_size: int = 32,
    num_beams: int = 1,
    max_new_tokens: int = 128,
    max_source_length: int = 128,
    use_vmap: bool = False,
    patience: int = 1,
) -> list[str]:
    """:func:`translate` for a `ctranslate2.Translator`: the same tokenization, length-sorted batches and
    detokenization, so that both engines are scored and timed on equal terms.

    transformers' ``max_new_tokens`` counts the end token (Marian forces it at the limit), CTranslate2's
    ``max_decoding_length`` does not: one less token is asked of CTranslate2, so both stop at the same place. Its
    default minimum length (1) is lifted, as transformers may end at the first step too.
    ``use_vmap`` restricts the output layer to the vocabulary map exported with the model (see
    :mod:`hfqd.export.vocab_map`). ``patience`` is CTranslate2's beam stopping factor: its default 1 ends the
    search once ``num_beams`` hypotheses have ended, earlier than transformers' default; 2 searches about as far
    (measured in `scripts/benchmark_ct2_export.py`).
    """
    order = sorted(range(len(sources)), key=lambda i: len(sources[i]))
    out: list[str] = [""] * len(sources)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        ids = tokenizer([sources[i] for i in idx], truncation=True, max_length=max_source_length)["input_ids"]
        results = translator.translate_batch(
            [tokenizer.convert_ids_to_tokens(x) for x in ids], beam_size=num_beams,
            max_decoding_length=max_new_tokens - 1, min_decoding_length=0, max_batch_size=batch_size,
            use_vmap=use_vmap, patience=patience,
        )
        for i, result in zip(idx, results):
            target = tokenizer.convert_tokens_to_ids(result.hypotheses[0])
            out[i] = tokenizer.decode(target, skip_special_tokens=True).strip()
    return out
