"""Translation scores: sacreBLEU/chrF on detokenized text and the tokenized, lowercased BLEU of older papers."""

import pytest

from hfqd.eval import bleu_difference_p_value, corpus_scores, moses_tokenize, tokenized_bleu


def test_corpus_scores_checks_its_inputs():
    assert corpus_scores(["Ein Hund läuft ."], ["Ein Hund läuft ."])["bleu"] == pytest.approx(100)
    with pytest.raises(ValueError, match="hypotheses for"):
        corpus_scores(["a"], ["a", "b"])


def test_tokenized_bleu_is_lowercased_and_moses_tokenized():
    pytest.importorskip("sacremoses")
    # Cased, detokenized BLEU punishes case and attached punctuation; the tokenized, lowercased variant does not.
    hyps, refs = ['Ein Kind mit der Nummer "93" fährt Ski.'], ['ein Kind mit der Nummer " 93 " fährt Ski .']
    assert corpus_scores(hyps, refs)["bleu"] < 100
    assert tokenized_bleu(hyps, refs, "de") == pytest.approx(100)
    assert moses_tokenize(hyps, "de") == ["ein kind mit der nummer &quot; 93 &quot; fährt ski ."]
    with pytest.raises(ValueError, match="hypotheses for"):
        tokenized_bleu(hyps, refs * 2, "de")


def test_bleu_difference_p_value_tells_noise_from_a_real_difference():
    refs = [f"der Hund {i} läuft schnell über die grüne Wiese ." for i in range(60)]
    # One changed word in one sentence of sixty: resampling often finds no difference at all.
    nudged = refs[:-1] + ["der Hund 59 läuft langsam über die grüne Wiese ."]
    assert bleu_difference_p_value(refs, nudged, refs, samples=200) > 0.05
    # Every sentence worse: no resampled test set can hide it.
    worse = [r.replace("schnell", "langsam").replace("grüne", "rote") for r in refs]
    assert bleu_difference_p_value(refs, worse, refs, samples=200) < 0.01
    with pytest.raises(ValueError, match="hypotheses for"):
        bleu_difference_p_value(refs, worse[:3], refs)
