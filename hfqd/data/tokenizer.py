"""Train tokenizers for translation: a shared BPE with `tokenizers`, or OPUS-MT's sentencepiece layout."""

from __future__ import annotations

import json
import os
from typing import Iterable

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

SPECIAL_TOKENS = ["<pad>", "</s>", "<unk>"]  # ids 0, 1, 2: Marian's conventions (pad doubles as decoder start)


def train_bpe_tokenizer(texts: Iterable[str], vocab_size: int = 1000, model_max_length: int = 256):
    """A BPE tokenizer over ``texts`` (both languages), appending ``</s>`` to every sequence.

    Metaspace pre-tokenization keeps the spaces in the tokens, so decoding gives back detokenized text.
    """
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.normalizer = normalizers.NFKC()
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False)
    tokenizer.train_from_iterator(texts, trainer=trainer)
    eos = tokenizer.token_to_id("</s>")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", eos)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=model_max_length,
    )


def train_marian_tokenizer(
    source_texts: Iterable[str],
    target_texts: Iterable[str],
    output_dir: str,
    vocab_size: int = 1000,
    model_max_length: int = 512,
):
    """A `MarianTokenizer` in the exact layout of the Helsinki-NLP/opus-mt models, trained on ``*_texts``.

    Two sentencepiece models (`source.spm`, `target.spm`), one shared `vocab.json` with `</s>` = 0, `<unk>` = 1 and
    `<pad>` last, as OPUS-MT has it. Written to ``output_dir`` and loaded back from there.
    """
    import sentencepiece as spm
    from transformers import MarianTokenizer

    os.makedirs(output_dir, exist_ok=True)
    pieces: dict[str, None] = {"</s>": None, "<unk>": None}
    for side, texts in (("source", source_texts), ("target", target_texts)):
        prefix = os.path.join(output_dir, side)
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(list(texts)), model_prefix=prefix, vocab_size=vocab_size, model_type="unigram",
            character_coverage=1.0, bos_id=-1, eos_id=0, unk_id=1, pad_id=-1, minloglevel=2,
            hard_vocab_limit=False,
        )
        os.replace(prefix + ".model", prefix + ".spm")
        os.remove(prefix + ".vocab")
        model = spm.SentencePieceProcessor(model_file=prefix + ".spm")
        pieces.update(dict.fromkeys(model.id_to_piece(i) for i in range(model.get_piece_size())))
    pieces["<pad>"] = None
    with open(os.path.join(output_dir, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump({piece: i for i, piece in enumerate(pieces)}, f, ensure_ascii=False)
    tokenizer = MarianTokenizer(
        os.path.join(output_dir, "source.spm"), os.path.join(output_dir, "target.spm"),
        os.path.join(output_dir, "vocab.json"), model_max_length=model_max_length,
    )
    tokenizer.save_pretrained(output_dir)
    return MarianTokenizer.from_pretrained(output_dir)
