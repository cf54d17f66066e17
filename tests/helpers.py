"""Tiny translation fixtures for trainer tests: a synthetic corpus, a tokenizer trained on it, tiny Marians."""

from __future__ import annotations

from datasets import Dataset, DatasetDict

from hfqd.data import synthetic_pairs, tokenize_translation, train_bpe_tokenizer

from .conftest import tiny_marian


def tiny_corpus(n: int = 200, seed: int = 0):
    pairs = synthetic_pairs(n, seed=seed)
    raw = DatasetDict({"train": Dataset.from_dict({"translation": [{"en": e, "de": d} for e, d in pairs]})})
    tokenizer = train_bpe_tokenizer([x for p in pairs for x in p], vocab_size=300)
    # Shorter than the tiny models' 64 positions.
    return raw, tokenizer, tokenize_translation(raw, tokenizer, "en", "de", max_source_length=48, max_target_length=48)


def tiny_pair(vocab_size: int):
    """A teacher and a differently initialised student, both tiny."""
    return tiny_marian(seed=1, vocab_size=vocab_size, d_model=32), tiny_marian(seed=2, vocab_size=vocab_size)


def opus_mt_teacher(folder, n_pairs: int = 300, vocab_size: int = 200, d_model: int = 32, layers: int = 2, seed: int = 0):
    """A tiny teacher in the exact Helsinki-NLP/opus-mt-en-de layout, saved to ``folder``: MarianTokenizer with
    source.spm / target.spm / vocab.json (`<pad>` last), `decoder_start_token_id = pad`, an all-zero `<pad>`
    embedding row and `bad_words_ids = [[pad]]`, as OPUS-MT checkpoints have them. Returns (model, tokenizer)."""
    import torch

    from hfqd.data import synthetic_pairs, train_marian_tokenizer
    from hfqd.distill import make_marian

    pairs = synthetic_pairs(n_pairs, seed=seed)
    tokenizer = train_marian_tokenizer([e for e, _ in pairs], [d for _, d in pairs], str(folder), vocab_size)
    model = make_marian(tokenizer, d_model=d_model, encoder_layers=layers, decoder_layers=layers, attention_heads=2,
                        ffn_dim=2 * d_model, dropout=0.0, max_position_embeddings=64, seed=seed)
    pad = tokenizer.pad_token_id
    assert pad == len(tokenizer) - 1 and model.config.decoder_start_token_id == pad
    with torch.no_grad():
        model.get_input_embeddings().weight[pad].zero_()
    model.generation_config.bad_words_ids = [[pad]]
    model.save_pretrained(str(folder))
    return model.eval(), tokenizer
