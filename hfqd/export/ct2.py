"""Export translation students to CTranslate2, the engine people serve Marian / OPUS-MT models with on CPU.

CTranslate2's own converter and model specs do the work. Only its Marian loader is adapted, because it assumes the
OPUS-MT layout and is not exact elsewhere:

* it starts the decoder from a zero embedding instead of the decoder start token's embedding. That is exact for
  OPUS-MT, whose start token (`<pad>`) has an all-zero embedding row, and wrong for any model whose start token
  has a real embedding (the Multi30k teacher, every student trained here): the first decoding step then sees
  another input, which moved greedy BLEU by 1 point for the teacher and by 8 for the students;
* it drops the last vocabulary entry and embedding row, assuming it is `<pad>`, which refuses (or shifts) every
  vocabulary where `<pad>` is elsewhere.

Here the zero start is used only where it is exact (the start token's row is all zeros), and `<pad>` is dropped
only where it is last, never generated (it is in the generation config's `bad_words_ids`) and not needed as the
start token. `final_logits_bias`, embedding scale and sinusoidal positions go through CTranslate2's loader as they are.
"""

from __future__ import annotations

import copy
import json
import os
from typing import Any

import torch
from torch import nn
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

from ..hub import integration  # noqa: F401  # registers the packed format, so packed folders load
from ..quant import is_quantized, materialized_state_dict
from ..quant.size import unsaved_keys
from ..utils import atomic_directory

QUANTIZATIONS = ("int8", "int8_float32", "int16", "float16", "bfloat16", "float32")
INSTALL_HINT = 'CTranslate2 export needs the deploy extra: pip install -e ".[deploy]" (or pip install ctranslate2).'
EXPORT_INFO_NAME = "hfqd_export.json"


def require_ctranslate2():
    """(ctranslate2, its transformers converters), or an ImportError that names the deploy extra."""
    try:
        import ctranslate2
        import ctranslate2.converters.transformers as ct2_transformers
    except ImportError as err:
        raise ImportError(INSTALL_HINT) from err
    return ctranslate2, ct2_transformers


def supported_architectures() -> list[str]:
    """Encoder-decoder configurations CTranslate2 can convert (Marian made exact by hfqd)."""
    _, ct2_transformers = require_ctranslate2()
    names = ("MarianConfig", "BartConfig", "MBartConfig", "M2M100Config", "PegasusConfig", "T5Config", "MT5Config")
    return [name for name in names if name in ct2_transformers._MODEL_LOADERS]


def _marian_loader(model: nn.Module, tokenizer):
    """A CTranslate2 Marian loader that reproduces what transformers computes for this model."""
    _, ct2_transformers = require_ctranslate2()
    config = model.config
    start_id = config.decoder_start_token_id
    embeddings = model.get_decoder().embed_tokens.weight
    zero_start = bool((embeddings[start_id] == 0).all())
    vocab_size = embeddings.shape[0]
    generation = getattr(model, "generation_config", None)
    banned = {tuple(ids) for ids in (getattr(generation, "bad_words_ids", None) or [])}
    pad = config.pad_token_id
    drop_pad = pad == vocab_size - 1 and (pad,) in banned and (zero_start or start_id != pad)

    class ExactMarianLoader(ct2_transformers.MarianMTLoader):
        def get_model_spec(self, model):
            model.config.normalize_before = False
            model.config.normalize_embedding = False
            spec = ct2_transformers.BartLoader.get_model_spec(self, model)
            if drop_pad:
                self._remove_pad_weights(spec)
            return spec

        def set_config(self, ct2_config, model, tokenizer):
            ct2_config.eos_token = tokenizer.eos_token
            ct2_config.unk_token = tokenizer.unk_token
            start = tokenizer.eos_token if drop_pad else tokenizer.convert_ids_to_tokens(start_id)
            ct2_config.decoder_start_token = start

        def set_decoder(self, spec, decoder):
            ct2_transformers.BartLoader.set_decoder(self, spec, decoder)
            spec.start_from_zero_embedding = zero_start

        def get_vocabulary(self, model, tokenizer):
            tokens = ct2_transformers.ModelLoader.get_vocabulary(self, model, tokenizer)
            if len(tokens) != vocab_size:
                raise ValueError(
                    f"The tokenizer has {len(tokens)} tokens but the model's embeddings have {vocab_size} rows: "
                    "export the model with the tokenizer it was trained with."
                )
            return tokens[:-1] if drop_pad else tokens

    return ExactMarianLoader(), {"zero_start": zero_start, "dropped_pad": drop_pad}


def _loader(model: nn.Module, tokenizer):
    config = getattr(model, "config", None)
    name = type(config).__name__
    if config is None or not getattr(config, "is_encoder_decoder", False) or name not in supported_architectures():
        raise ValueError(
            f"CTranslate2 export takes encoder-decoder translation models ({', '.join(supported_architectures())}); "
            f"got {type(model).__name__} ({name}). Image classifiers and other models stay in transformers."
        )
    if name == "MarianConfig":
        return _marian_loader(model, tokenizer)
    _, ct2_transformers = require_ctranslate2()
    return ct2_transformers._MODEL_LOADERS[name], {}


def _load(model_or_path, tokenizer):
    """(model, tokenizer) from a folder (packed hfqd or plain), a Hub id, or an in-memory model."""
    if isinstance(model_or_path, nn.Module):
        if tokenizer is None:
            raise ValueError("An in-memory model needs its tokenizer: export_ctranslate2(model, out, tokenizer=tok).")
        return model_or_path, tokenizer
    source = str(model_or_path)
    if os.path.isdir(source) and not os.path.isfile(os.path.join(source, "config.json")):
        raise FileNotFoundError(f"{source} has no config.json: it is not a saved model folder (write one with "
                                "`save_pretrained` or `hfqd.save_packed`).")
    if tokenizer is None:
        tokenizer = AutoTokenizer.from_pretrained(source)
    return AutoModelForSeq2SeqLM.from_pretrained(source), tokenizer


def export_ctranslate2(
    model_or_path: Any,
    output_dir: str,
    quantization: str = "int8",
    tokenizer=None,
    force: bool = False,
    vocab_map: str | None = None,
) -> str:
    """Convert a translation model to a self-contained CTranslate2 folder; returns ``output_dir``.

    Args:
        model_or_path: a packed hfqd folder, any transformers seq2seq folder or Hub id, or an in-memory model
            (a quantized hfqd student exports the weights it computes with).
        output_dir: the folder to write: CTranslate2 model, vocabulary and the tokenizer's own files, so that
            translating needs neither hfqd nor torch. Written beside and swapped in whole.
        quantization: CTranslate2 weight type, one of :data:`QUANTIZATIONS`.
        tokenizer: the model's tokenizer (required for an in-memory model; loaded from the source otherwise).
        force: replace an existing ``output_dir``.
        vocab_map: a vocabulary map file (:func:`hfqd.export.write_vocab_map`) to include, so that translation
            with ``use_vmap=True`` restricts the output layer to each batch's candidate tokens.

    Raises:
        ImportError: ctranslate2 is not installed (names the deploy extra).
        ValueError: unknown quantization, a model CTranslate2 cannot run, or tokenizer and model disagree.
        FileExistsError: ``output_dir`` exists and ``force`` is not set.
        FileNotFoundError: ``vocab_map`` does not exist.
    """
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"Unknown quantization {quantization!r}; use one of {', '.join(QUANTIZATIONS)}.")
    if os.path.exists(output_dir) and not force:
        raise FileExistsError(f"{output_dir} exists; pass force=True (--force) to replace it.")
    if vocab_map is not None and not os.path.isfile(vocab_map):
        raise FileNotFoundError(f"Vocabulary map {vocab_map} not found; build one with hfqd.export.write_vocab_map.")
    ctranslate2, _ = require_ctranslate2()
    model, tokenizer = _load(model_or_path, tokenizer)
    loader, notes = _loader(model, tokenizer)
    model = _plain_copy(model)

    class InMemoryConverter(ctranslate2.converters.Converter):
        def _load(self):
            with torch.no_grad():
                return loader(model, tokenizer)

    with atomic_directory(output_dir) as tmp:
        InMemoryConverter().convert(tmp, vmap=vocab_map, quantization=quantization, force=True)
        tokenizer.save_pretrained(tmp)
        info = {"quantization": quantization, "source": _describe(model_or_path), **notes}
        with open(os.path.join(tmp, EXPORT_INFO_NAME), "w") as f:
            json.dump(info, f, indent=2)
    return output_dir


def _plain_copy(model: nn.Module) -> nn.Module:
    """A new model holding the values ``model`` computes with (the quantized ones for an hfqd student).

    Always a copy: CTranslate2's converter and quantizer may work on the tensors it is given in place, and the
    caller's model must come out of an export unchanged.
    """
    if is_quantized(model):
        state = materialized_state_dict(model)
    else:
        state = {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}
    plain = type(model)(copy.deepcopy(model.config))
    missing, unexpected = plain.load_state_dict(state, strict=False)
    rebuilt = unsaved_keys(model)
    if unexpected or [key for key in missing if key not in rebuilt and key not in plain.all_tied_weights_keys]:
        raise ValueError(f"Could not copy the model's weights (missing {missing[:3]}, unexpected {unexpected[:3]}).")
    plain.generation_config = copy.deepcopy(model.generation_config)
    return plain.eval()


def _describe(source: Any) -> str:
    return source if isinstance(source, str) else f"in-memory {type(source).__name__}"
