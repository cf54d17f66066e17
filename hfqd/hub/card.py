"""Model cards for packed students, built with huggingface_hub's card utilities."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from huggingface_hub import ModelCard, ModelCardData

from ..eval.report import markdown_table
from ..version import __version__
from .attach import SHADOWS_NAME

_TEMPLATE = """---
{card_data}
---

# {title}

A {bits}-bit student of {teacher}, compressed with
hfqd by {method_long} ([Polino, Pascanu & Alistarh, ICLR 2018](https://arxiv.org/abs/1802.05668)).
Weights are stored bit-packed ({bits} bits per quantized weight, buckets of {bucket_size} values with one fp32
minimum and scale each); biases and norms stay in fp32.{parent}

## Results

{results}

## Size

| | bytes |
|---|---|
| weights file | {file_bytes:,} |
| theoretical ({bits}-bit codes + bucket scales + fp32 rest) | {theoretical_bytes:,.0f} |
| the same model in fp32 | {fp32_bytes:,} |

Compression vs. the same architecture in fp32: {ratio:.1f}x.

## How it was made

```bash
{command}
```

Training data: {datasets}. {shadows}

## How to use

hfqd registers its quantizer with transformers on import, so import it before loading:

```python
import hfqd  # noqa: F401  (registers the "hfqd" quantization method)
from transformers import {auto_class}, AutoTokenizer

model = {auto_class}.from_pretrained("{repo_id}")
tokenizer = AutoTokenizer.from_pretrained("{repo_id}")
```

Import hfqd first: without it, transformers does not know the `hfqd` quantization method and cannot load the
packed weights.
{ctranslate2}
*Written by hfqd {version}.*
"""


@dataclass
class CardInfo:
    """What a model card says about a packed student."""

    repo_id: str
    base_model: str
    datasets: list[str]
    bits: float
    bucket_size: int | None
    method: str  # "qd", "dq", "qat", "pm"
    results_markdown: str
    file_bytes: int
    theoretical_bytes: float
    fp32_bytes: int
    command: str
    task: str = "translation"
    language: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=lambda: ["bleu", "chrf"])
    parent_model: str | None = None
    shadows_saved: bool = False
    license: str | None = None
    ctranslate2_folder: str | None = None  # e.g. "ctranslate2-int8", exported beside the packed weights


_METHODS = {
    "qd": "quantized distillation",
    "dq": "differentiable quantization",
    "qat": "quantization-aware training (no teacher)",
    "pm": "post-training quantization",
}
_AUTO = {"translation": "AutoModelForSeq2SeqLM", "image-classification": "AutoModelForImageClassification"}


def _hub_id(name: str) -> str | None:
    """A Hub id for card metadata, or None for local paths (which mean nothing to a reader of the card)."""
    if os.path.exists(name) or name.startswith((".", "/", "~")):
        return None
    return name


_CT2_TEMPLATE = """
## Fast CPU translation with CTranslate2

`{folder}/` holds the same model exported to [CTranslate2](https://github.com/OpenNMT/CTranslate2) ({kind}) with its
tokenizer, for serving without hfqd or torch (`pip install ctranslate2 transformers`):

```python
import ctranslate2
from huggingface_hub import snapshot_download
from transformers import AutoTokenizer

folder = snapshot_download("{repo_id}", allow_patterns="{folder}/*") + "/{folder}"
translator = ctranslate2.Translator(folder)
tokenizer = AutoTokenizer.from_pretrained(folder)
tokens = tokenizer.convert_ids_to_tokens(tokenizer.encode("A man is riding a bike."))
output = translator.translate_batch([tokens], beam_size=4)[0].hypotheses[0]
print(tokenizer.decode(tokenizer.convert_tokens_to_ids(output), skip_special_tokens=True))
```
"""


def _ctranslate2_section(info: "CardInfo") -> str:
    kind = info.ctranslate2_folder.removeprefix("ctranslate2-")
    return _CT2_TEMPLATE.format(folder=info.ctranslate2_folder, kind=kind, repo_id=info.repo_id)


def _teacher_reference(hub_id: str | None, base_model: str) -> str:
    """A Hub teacher is linked; a local folder is named (its path means nothing to a reader of the card)."""
    if hub_id:
        return f"[{hub_id}](https://huggingface.co/{hub_id})"
    return f"`{os.path.basename(os.path.normpath(base_model))}`"


def bits_label(bits: float) -> str:
    """`4` for whole widths, `2.37` for the mean width of bit-allocated (learned-point) students."""
    return f"{bits:.2f}".rstrip("0").rstrip(".")


def make_model_card(info: CardInfo) -> ModelCard:
    """A model card with metadata (library, tags, base_model, datasets, metrics) and the results table."""
    base = _hub_id(info.parent_model or info.base_model)
    data = ModelCardData(
        library_name="transformers",
        base_model=base,
        datasets=[d for d in (_hub_id(x) for x in info.datasets) if d] or None,
        metrics=info.metrics,
        language=info.language or None,
        license=info.license,
        pipeline_tag=info.task,
        tags=["hfqd", "quantized", f"{bits_label(info.bits)}-bit", "distillation",
              _METHODS.get(info.method, info.method)],
    )
    parent = (
        f"\n\nFine-tuned from the packed hfqd model `{info.parent_model}`, keeping its bit widths."
        if info.parent_model
        else ""
    )
    content = _TEMPLATE.format(
        card_data=data.to_yaml(),
        title=info.repo_id.split("/")[-1],
        bits=bits_label(info.bits),
        teacher=_teacher_reference(base, info.base_model),
        method_long=_METHODS.get(info.method, info.method),
        bucket_size=info.bucket_size if info.bucket_size else "the whole tensor",
        parent=parent,
        results=info.results_markdown,
        file_bytes=info.file_bytes,
        theoretical_bytes=info.theoretical_bytes,
        fp32_bytes=info.fp32_bytes,
        ratio=info.fp32_bytes / info.file_bytes,
        command=info.command,
        datasets=", ".join(os.path.normpath(d) if os.path.exists(d) else d for d in info.datasets) or "not recorded",
        shadows=(
            "Full-precision shadow weights are saved beside the packed weights (`hfqd_shadows.safetensors`), so "
            "fine-tuning resumes from them."
            if info.shadows_saved
            else "Only the packed weights are saved; fine-tuning starts from their dequantized values."
        ),
        auto_class=_AUTO.get(info.task, "AutoModel"),
        repo_id=info.repo_id,
        version=__version__,
        ctranslate2=_ctranslate2_section(info) if info.ctranslate2_folder else "",
    )
    return ModelCard(content)


def write_row_cards(
    rows,
    output_dir: str,
    base_model: str,
    datasets: list[str],
    command: str,
    task: str,
    metric_names: list[str],
    note: str = "",
    language: list[str] | None = None,
    parent_model: str | None = None,
    hub_model_id: str | None = None,
) -> list[str]:
    """A model card (README.md) in the folder of every saved quantized row of a results table.

    Each card shows the teacher, the full-precision distilled student (and a fine-tuned model's starting point)
    beside its own row. Returns the folders that got a card.
    """
    written = []
    for row in rows:
        folder = os.path.join(output_dir, row.method)
        weights = os.path.join(folder, "model.safetensors")
        if row.bits is None or not os.path.isfile(weights):
            continue
        with open(os.path.join(folder, "config.json")) as f:
            quantization = json.load(f)["quantization_config"]
        shown = ("teacher", "kd", "initial", row.method)
        table = markdown_table([r for r in rows if r.method in shown], metric_names)
        method = row.method.rstrip("0123456789")
        if method == "finetune":
            method = "qd" if any(r.method == "teacher" for r in rows) else "qat"
        card = make_model_card(CardInfo(
            repo_id=hub_model_id or f"{row.method}-{os.path.basename(os.path.normpath(output_dir))}",
            base_model=base_model, datasets=datasets, bits=row.bits, bucket_size=quantization["bucket_size"],
            method={"qddq": "dq"}.get(method, method), results_markdown=f"{note}\n\n{table}".strip(),
            file_bytes=os.path.getsize(weights), theoretical_bytes=row.size_mb * 1e6,
            fp32_bytes=int(round(row.fp32_mb * 1e6)), command=command, task=task, metrics=metric_names,
            language=language or [], parent_model=parent_model,
            shadows_saved=os.path.isfile(os.path.join(folder, SHADOWS_NAME)),
            ctranslate2_folder=next((name for name in sorted(os.listdir(folder))
                                     if name.startswith("ctranslate2-") and os.path.isdir(os.path.join(folder, name))),
                                    None),
        ))
        card.save(os.path.join(folder, "README.md"))
        written.append(folder)
    return written
