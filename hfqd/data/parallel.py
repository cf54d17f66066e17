"""Parallel text: load it (local plain-text files or the Hub), check it, tokenize it."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

from datasets import Dataset, DatasetDict, load_dataset, load_from_disk
from huggingface_hub import constants
from huggingface_hub.errors import OfflineModeIsEnabled

logger = logging.getLogger(__name__)

DEFAULT_SPLITS = {"train": "train", "validation": "val", "test": "test2016"}


@dataclass
class TruncationReport:
    """How many examples of a split were longer than the maximum length (they are truncated, never dropped)."""

    split: str
    sources: int = 0
    targets: int = 0
    total: int = 0


def _read_lines(path: str) -> list[str]:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Missing file {path}.")
    with open(path, "rb") as f:
        data = f.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise ValueError(
            f"{path}, line {line}: invalid UTF-8 ({err.reason} at byte {err.start}). Convert the file to UTF-8, e.g. "
            f"`iconv -f LATIN1 -t UTF-8`."
        ) from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise ValueError(f"{path} is empty.")
    return [line.rstrip("\r") for line in lines]


def load_parallel_dir(
    data_dir: str,
    source_lang: str = "en",
    target_lang: str = "de",
    splits: dict[str, str] | None = None,
) -> DatasetDict:
    """Load ``{prefix}.{lang}`` plain-text files (one sentence per line, Multi30k layout) as a `DatasetDict`.

    Args:
        data_dir: folder holding e.g. `train.en`, `train.de`, `val.en`, `val.de`, `test2016.en`, `test2016.de`.
        source_lang / target_lang: file suffixes.
        splits: split name -> file prefix; defaults to `train`, `validation` (`val`) and `test` (`test2016`).

    Each example is ``{"translation": {source_lang: ..., target_lang: ...}}``, the layout of Hub translation
    datasets such as wmt16. Raises a clear error for a missing folder or file, an empty file, or source and target
    files whose line counts differ. Blank pairs are dropped from the training split (with a warning) and are an
    error elsewhere, since an evaluation set must not shrink silently.
    """
    if not os.path.isdir(data_dir):
        raise FileNotFoundError(f"--dataset_dir {data_dir} is not a folder.")
    splits = dict(DEFAULT_SPLITS if splits is None else splits)
    if not splits:
        raise ValueError("No splits requested.")
    result = {}
    for split, prefix in splits.items():
        src_path = os.path.join(data_dir, f"{prefix}.{source_lang}")
        tgt_path = os.path.join(data_dir, f"{prefix}.{target_lang}")
        if not os.path.isfile(src_path) or not os.path.isfile(tgt_path):
            present = sorted(f for f in os.listdir(data_dir) if not f.startswith("."))
            raise FileNotFoundError(
                f"Split {split!r} needs {prefix}.{source_lang} and {prefix}.{target_lang} in {data_dir}; "
                f"found {present}. Set the split's file prefix (e.g. --test_split test2017)."
            )
        src, tgt = _read_lines(src_path), _read_lines(tgt_path)
        if len(src) != len(tgt):
            raise ValueError(
                f"{src_path} has {len(src)} lines but {tgt_path} has {len(tgt)}: parallel files must be aligned "
                "line by line."
            )
        blank = [i + 1 for i, (s, t) in enumerate(zip(src, tgt)) if not s.strip() or not t.strip()]
        if blank:
            if split != "train":
                raise ValueError(f"{split!r} has {len(blank)} blank lines (first at line {blank[0]}) in {data_dir}.")
            if len(blank) == len(src):
                raise ValueError(f"Every pair of {src_path} and {tgt_path} has a blank side: nothing to train on.")
            logger.warning(f"Dropping {len(blank)} blank training pairs (first at line {blank[0]}).")
            keep = set(range(len(src))) - {i - 1 for i in blank}
            src = [s for i, s in enumerate(src) if i in keep]
            tgt = [t for i, t in enumerate(tgt) if i in keep]
        result[split] = Dataset.from_dict(
            {"translation": [{source_lang: s, target_lang: t} for s, t in zip(src, tgt)]}
        )
    return DatasetDict(result)


def load_translation_dataset(
    dataset_name: str | None = None,
    dataset_config: str | None = None,
    dataset_dir: str | None = None,
    source_lang: str = "en",
    target_lang: str = "de",
    splits: dict[str, str] | None = None,
) -> DatasetDict:
    """Local plain-text files (``dataset_dir``) or any `datasets.load_dataset` source with a `translation` column.

    For Hub/`load_dataset` sources, ``splits`` maps our split names to the dataset's (e.g. `test` -> `test`).
    """
    if dataset_dir is not None:
        return load_parallel_dir(dataset_dir, source_lang, target_lang, splits)
    if dataset_name is None:
        raise ValueError("Give --dataset_dir (local files) or --dataset (a Hub dataset name).")
    raw = _load_named_dataset(dataset_name, dataset_config)
    mapping = splits or {"train": "train", "validation": "validation", "test": "test"}
    out = {}
    for split, source_split in mapping.items():
        if source_split not in raw:
            raise ValueError(f"{dataset_name} has no split {source_split!r}; it has {list(raw)}.")
        ds = raw[source_split]
        if "translation" not in ds.column_names:
            raise ValueError(f"{dataset_name} has no `translation` column (columns: {ds.column_names}).")
        first = ds[0]["translation"] if len(ds) else {}
        if len(ds) == 0:
            raise ValueError(f"Split {source_split!r} of {dataset_name} is empty.")
        if source_lang not in first or target_lang not in first:
            raise ValueError(f"{dataset_name} translations have languages {list(first)}, not {source_lang}/{target_lang}.")
        out[split] = ds
    return DatasetDict(out)


def _load_named_dataset(name: str, config: str | None) -> DatasetDict:
    """A Hub dataset, a folder written by `DatasetDict.save_to_disk`, or a folder of data files (parquet, json...).

    A local folder has no Hub config, so ``config`` is ignored for it.
    """
    if os.path.isdir(name):
        if os.path.isfile(os.path.join(name, "dataset_dict.json")):
            return load_from_disk(name)
        if os.path.isfile(os.path.join(name, "dataset_info.json")):
            raise ValueError(f"{name} holds a single split saved with `Dataset.save_to_disk`; save a DatasetDict.")
        return load_dataset(name)
    try:
        return load_dataset(name, config)
    except (ConnectionError, OfflineModeIsEnabled) as err:
        what = f"{name!r} (config {config!r})" if config else repr(name)
        raise ConnectionError(
            f"The dataset {what} is not in the local `datasets` cache and the Hub cannot be reached "
            f"(HF_HUB_OFFLINE={int(constants.HF_HUB_OFFLINE)})."
        ) from err


@dataclass
class TokenizedSplits:
    """Tokenized datasets plus the raw texts kept for detokenized BLEU."""

    datasets: DatasetDict
    sources: dict[str, list[str]] = field(default_factory=dict)
    references: dict[str, list[str]] = field(default_factory=dict)
    truncation: dict[str, TruncationReport] = field(default_factory=dict)


def _encode_capped(tokenizer, texts: list[str], limit: int, side: str) -> tuple[list[list[int]], list[bool]]:
    """Token ids of ``texts`` (``side``: `text` for sources, `text_target` for targets) truncated to ``limit``, and
    which were cut. One pass at ``limit + 1`` tokens tells which sentences are longer without tokenizing them in
    full; only those (few) are encoded again with the tokenizer's own truncation, special tokens in place."""
    ids = tokenizer(**{side: texts}, max_length=limit + 1, truncation=True)["input_ids"]
    cut = [len(x) > limit for x in ids]
    long = [i for i, c in enumerate(cut) if c]
    if long:
        again = tokenizer(**{side: [texts[i] for i in long]}, max_length=limit, truncation=True)["input_ids"]
        for i, x in zip(long, again):
            ids[i] = x
    return ids, cut


def tokenize_translation(
    raw: DatasetDict,
    tokenizer,
    source_lang: str,
    target_lang: str,
    max_source_length: int = 128,
    max_target_length: int = 128,
    source_prefix: str = "",
    keep_text: tuple[str, ...] | None = None,
    num_proc: int | None = None,
) -> TokenizedSplits:
    """Tokenize every split with batched `datasets.map` (Arrow-backed and cached for file-backed datasets, so a
    WMT-size corpus is never held as Python lists); long sentences are truncated and counted, never dropped.

    The raw texts of the ``keep_text`` splits (default: every split but `train`) are kept for detokenized BLEU.
    """
    result = TokenizedSplits(DatasetDict())

    def encode(batch):
        sources = [source_prefix + ex[source_lang] for ex in batch["translation"]]
        targets = [ex[target_lang] for ex in batch["translation"]]
        input_ids, source_cut = _encode_capped(tokenizer, sources, max_source_length, "text")
        labels, target_cut = _encode_capped(tokenizer, targets, max_target_length, "text_target")
        return {"input_ids": input_ids, "attention_mask": [[1] * len(ids) for ids in input_ids], "labels": labels,
                "source_truncated": source_cut, "target_truncated": target_cut}

    for split, ds in raw.items():
        if len(ds) == 0:
            raise ValueError(f"The {split!r} split is empty: there is nothing to tokenize.")
        encoded = ds.map(encode, batched=True, remove_columns=ds.column_names, num_proc=num_proc,
                         desc=f"Tokenizing {split}")
        report = TruncationReport(split, total=len(encoded))
        report.sources = int(sum(encoded.with_format("numpy")["source_truncated"]))
        report.targets = int(sum(encoded.with_format("numpy")["target_truncated"]))
        if report.sources or report.targets:
            logger.warning(
                f"{split}: {report.sources} sources longer than {max_source_length} tokens and {report.targets} "
                f"targets longer than {max_target_length} were truncated (of {report.total})."
            )
        result.datasets[split] = encoded.remove_columns(["source_truncated", "target_truncated"])
        if split != "train" if keep_text is None else split in keep_text:
            pairs = ds["translation"]
            result.sources[split] = [source_prefix + ex[source_lang] for ex in pairs]
            result.references[split] = [ex[target_lang] for ex in pairs]
        result.truncation[split] = report
    return result

