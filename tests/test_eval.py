"""Translation scores: sacreBLEU/chrF on detokenized text and the tokenized, lowercased BLEU of older papers."""

import pytest

from hfqd.eval import corpus_scores, moses_tokenize, tokenized_bleu


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
