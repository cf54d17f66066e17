"""Student builders for encoder-decoder translation models, and the vocabulary check."""

from __future__ import annotations

import copy
import re
import warnings

import torch
from torch import nn
from transformers import AutoModelForSeq2SeqLM, PreTrainedModel

_LAYER_KEY = re.compile(r"^(?P<prefix>.*\b(?P<stack>encoder|decoder)\.layers\.)(?P<index>\d+)(?P<rest>\..*)$")


def pick_layers(n_teacher: int, n_student: int) -> list[int]:
    """Evenly spaced teacher layers, always keeping the first and (for 2+ layers) the last.

    The same idea as the `make_student` helper of the seq2seq-distillation examples: copied layers spread over the
    teacher's depth keep more of what it computes than a contiguous block.
    """
    if not 1 <= n_student <= n_teacher:
        raise ValueError(f"A student can copy 1 to {n_teacher} layers of this teacher, got {n_student}.")
    if n_student == 1:
        return [0]
    return [round(i * (n_teacher - 1) / (n_student - 1)) for i in range(n_student)]


def _output_vocab(model: nn.Module) -> int:
    """Size of the model's output distribution: its vocabulary, or its classes for a classifier."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if head is not None:
        return head.weight.shape[0]
    config = model.config
    if getattr(config, "vocab_size", None) is not None:
        return int(config.vocab_size)
    return int(config.num_labels)


def check_same_outputs(teacher: nn.Module, student: nn.Module, teacher_tokenizer=None, student_tokenizer=None):
    """Raise if distillation is impossible because teacher and student predict different output sets (vocabulary
    sizes, or classes); with both tokenizers, also compare them (:func:`check_same_tokenizer`)."""
    t, s = _output_vocab(teacher), _output_vocab(student)
    if t != s:
        raise ValueError(
            f"The teacher predicts {t} outputs and the student {s}: distillation needs one vocabulary (or one set "
            "of classes). "
            "Build the student from the teacher (make_student_from_teacher) or with the teacher's tokenizer, or use "
            "distillation_mode='sequence'."
        )
    if teacher_tokenizer is not None and student_tokenizer is not None:
        check_same_tokenizer(teacher_tokenizer, student_tokenizer)


def check_same_vocabulary(*args, **kwargs):
    """Deprecated name of :func:`check_same_outputs` (it compares output sizes; tokenizers only when given)."""
    warnings.warn("check_same_vocabulary is renamed check_same_outputs; the old name goes in the next release.",
                  FutureWarning, stacklevel=2)
    return check_same_outputs(*args, **kwargs)


def check_same_tokenizer(teacher_tokenizer, student_tokenizer) -> None:
    """Raise unless both tokenizers map the same tokens to the same ids, special tokens included.

    Equal vocabulary sizes are not enough: a student trained on the teacher's ids but shipped with another tokenizer
    of the same size would silently translate garbage.
    """
    t_vocab, s_vocab = teacher_tokenizer.get_vocab(), student_tokenizer.get_vocab()
    if t_vocab != s_vocab:
        differ = sorted(set(t_vocab.items()) ^ set(s_vocab.items()), key=lambda item: item[1])[:3]
        raise ValueError(
            f"The teacher's and the student's tokenizers differ ({len(t_vocab)} vs {len(s_vocab)} tokens; e.g. "
            f"{differ}): distillation trains the student on the teacher's token ids, so both need the same "
            "tokenizer. Save the teacher's tokenizer with the student, or give a student built with it."
        )
    for attr in ("pad_token_id", "eos_token_id", "bos_token_id", "unk_token_id"):
        t, s = getattr(teacher_tokenizer, attr, None), getattr(student_tokenizer, attr, None)
        if t != s:
            raise ValueError(f"The teacher's tokenizer has {attr}={t}, the student's {s}: use the same tokenizer for both.")


def make_student_from_teacher(
    teacher: PreTrainedModel, encoder_layers: int, decoder_layers: int, **config_overrides
) -> PreTrainedModel:
    """A shallower copy of an encoder-decoder teacher (Marian, BART family).

    Embeddings, output layer and norms are copied; the student's layers are evenly spaced teacher layers
    (:func:`pick_layers`). Width stays the teacher's; ``config_overrides`` may change e.g. dropout.
    """
    config = copy.deepcopy(teacher.config)
    if not hasattr(config, "encoder_layers") or not hasattr(config, "decoder_layers"):
        raise ValueError(
            f"{type(teacher).__name__} has no encoder_layers/decoder_layers in its config; build the student from "
            "a config instead (make_student_from_config)."
        )
    picks = {
        "encoder": pick_layers(config.encoder_layers, encoder_layers),
        "decoder": pick_layers(config.decoder_layers, decoder_layers),
    }
    config.encoder_layers, config.decoder_layers = encoder_layers, decoder_layers
    for key, value in config_overrides.items():
        setattr(config, key, value)
    student = type(teacher)(config)
    source = teacher.state_dict()
    target = {}
    for key in student.state_dict():
        match = _LAYER_KEY.match(key)
        if match:
            teacher_index = picks[match["stack"]][int(match["index"])]
            src = f"{match['prefix']}{teacher_index}{match['rest']}"
        else:
            src = key
        if src in source:
            target[key] = source[src]
    missing, _ = student.load_state_dict(target, strict=False)
    tied_ok = set(getattr(student, "_tied_weights_keys", None) or [])
    unexpected_missing = [k for k in missing if k not in tied_ok and "embed_positions" not in k]
    if unexpected_missing:
        raise ValueError(f"Could not copy {unexpected_missing[:3]} from the teacher.")
    student.tie_weights()
    return _decodes_like(student.to(next(teacher.parameters()).dtype), teacher)


def make_student_from_config(teacher: PreTrainedModel, seed: int = 0, **config_overrides) -> PreTrainedModel:
    """A freshly initialised student with the teacher's vocabulary and special tokens, and new sizes.

    Example: ``make_student_from_config(teacher, d_model=128, encoder_layers=2, decoder_layers=1)``.
    """
    config = copy.deepcopy(teacher.config)
    for key, value in config_overrides.items():
        if not hasattr(config, key):
            raise ValueError(f"{type(config).__name__} has no field {key!r}.")
        setattr(config, key, value)
    torch.manual_seed(seed)
    return _decodes_like(AutoModelForSeq2SeqLM.from_config(config), teacher)


def _decodes_like(student: PreTrainedModel, teacher: PreTrainedModel) -> PreTrainedModel:
    """Give the student its teacher's generation settings (beams, length limits, banned tokens such as OPUS-MT's
    pad). They live beside the config, not in it: without them the student decodes with transformers' defaults (at
    most 20 tokens, pad allowed), and its CTranslate2 export does not know that pad is banned."""
    if getattr(teacher, "generation_config", None) is not None and student.can_generate():
        student.generation_config = copy.deepcopy(teacher.generation_config)
    return student


def make_marian(
    tokenizer,
    d_model: int = 256,
    encoder_layers: int = 3,
    decoder_layers: int = 3,
    attention_heads: int = 4,
    ffn_dim: int = 1024,
    dropout: float = 0.1,
    max_position_embeddings: int = 256,
    seed: int = 0,
) -> PreTrainedModel:
    """A randomly initialised Marian translation model over ``tokenizer``'s vocabulary (shared, tied embeddings).

    `scale_embedding=True` as in OPUS-MT checkpoints: without it a Marian model trained from scratch learns far
    more slowly.
    """
    from transformers import MarianConfig, MarianMTModel

    pad = tokenizer.pad_token_id
    eos = tokenizer.eos_token_id
    if pad is None or eos is None:
        raise ValueError("The tokenizer needs a pad and an eos token to build a Marian model.")
    config = MarianConfig(
        vocab_size=len(tokenizer),
        decoder_vocab_size=len(tokenizer),
        d_model=d_model,
        encoder_layers=encoder_layers,
        decoder_layers=decoder_layers,
        encoder_attention_heads=attention_heads,
        decoder_attention_heads=attention_heads,
        encoder_ffn_dim=ffn_dim,
        decoder_ffn_dim=ffn_dim,
        dropout=dropout,
        max_position_embeddings=max_position_embeddings,
        pad_token_id=pad,
        eos_token_id=eos,
        decoder_start_token_id=pad,
        forced_eos_token_id=eos,
        scale_embedding=True,
        share_encoder_decoder_embeddings=True,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = MarianMTModel(config)
    model.generation_config.max_length = max_position_embeddings
    model.generation_config.num_beams = 1
    model.generation_config.bad_words_ids = None
    return model


def make_resnet(
    num_labels: int,
    num_channels: int = 1,
    embedding_size: int = 32,
    hidden_sizes: tuple[int, ...] = (32, 64, 128),
    depths: tuple[int, ...] = (1, 1, 1),
    seed: int = 0,
) -> PreTrainedModel:
    """A transformers ResNet image classifier built from a config (basic blocks), for teachers and students."""
    from transformers import ResNetConfig, ResNetForImageClassification

    if len(hidden_sizes) != len(depths):
        raise ValueError(f"`hidden_sizes` {hidden_sizes} and `depths` {depths} must have one entry per stage.")
    config = ResNetConfig(
        num_channels=num_channels, embedding_size=embedding_size, hidden_sizes=list(hidden_sizes),
        depths=list(depths), layer_type="basic", num_labels=num_labels,
    )
    torch.manual_seed(seed)
    return ResNetForImageClassification(config)
