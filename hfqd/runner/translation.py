"""Translation helpers of the recipes: score a model with sacreBLEU and chrF."""

from __future__ import annotations

from ..eval.translation import corpus_scores, translate


def evaluate_translation(model, tokenizer, sources, references, num_beams=1, batch_size=64, max_new_tokens=128,
                         max_source_length=128):
    """BLEU and chrF of ``model`` on one test set (detokenized, sacreBLEU defaults); sources are cut at
    ``max_source_length`` tokens, as in training (and as the truncation report counts)."""
    hypotheses = translate(model, tokenizer, sources, batch_size=batch_size, num_beams=num_beams,
                           max_new_tokens=max_new_tokens, max_source_length=max_source_length)
    return corpus_scores(hypotheses, references), hypotheses


