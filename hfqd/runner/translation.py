"""Translation parts of the runner: where the data comes from, and scoring with sacreBLEU and chrF."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from datasets import DatasetDict

from ..data import load_parallel_dir, load_translation_dataset, synthetic_translation_dataset
from ..eval.translation import corpus_scores, translate
from ..utils import ensure_available

logger = logging.getLogger(__name__)


def evaluate_translation(model, tokenizer, sources, references, num_beams=1, batch_size=64, max_new_tokens=128,
                         max_source_length=128):
    """BLEU and chrF of ``model`` on one test set (detokenized, sacreBLEU defaults); sources are cut at
    ``max_source_length`` tokens, as in training (and as the truncation report counts)."""
    hypotheses = translate(model, tokenizer, sources, batch_size=batch_size, num_beams=num_beams,
                           max_new_tokens=max_new_tokens, max_source_length=max_source_length)
    return corpus_scores(hypotheses, references), hypotheses


@dataclass
class TranslationDataArguments:
    """Where a translation recipe's data comes from: a Hub dataset, a local folder, or the synthetic demo corpus."""

    dataset: str | None = field(default="wmt16", metadata={"help": "Hub dataset with a `translation` column."})
    dataset_config: str | None = field(default="de-en", metadata={"help": "Hub dataset config."})
    dataset_dir: str | None = field(default=None, metadata={"help": "Folder of {split}.{lang} plain-text files."})
    synthetic_pairs: int | None = field(
        default=None, metadata={"help": "Generate this many synthetic training pairs instead (offline demo)."}
    )
    synthetic_domain: str = field(default="general", metadata={"help": "Synthetic lexicon: general or kitchen."})
    source_lang: str = field(default="en", metadata={"help": "Source language code / file suffix."})
    target_lang: str = field(default="de", metadata={"help": "Target language code / file suffix."})
    train_split: str = field(default="train", metadata={"help": "Training split (file prefix with dataset_dir)."})
    validation_split: str = field(default="validation", metadata={"help": "Validation split (e.g. val)."})
    test_split: str = field(default="test", metadata={"help": "Test split (e.g. test2016)."})
    test_dir: str | None = field(
        default=None,
        metadata={"help": "Read the test set from {test_dir}/{test_split}.{lang} plain-text files instead of the "
                          "dataset, e.g. ../shared/data/wmt-newstest-ende with --test_split newstest2016-ende."},
    )
    max_source_length: int = field(default=128, metadata={"help": "Longer sources are truncated (and counted)."})
    max_target_length: int = field(default=128, metadata={"help": "Longer targets are truncated (and counted)."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Use only this many training pairs."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Score only this many test pairs."})

    def __post_init__(self):
        for name in ("max_train_samples", "max_eval_samples", "max_source_length", "max_target_length"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"--{name} must be a positive number, got {value}; leave it out to use everything.")


def load_translation_data(data: TranslationDataArguments, seed: int, offline_hint: str = "") -> DatasetDict:
    """The raw splits (`train`, `validation`, `test`) that ``data`` describes, cut to its sample limits; one
    sentence, ending in ``offline_hint``, when a Hub dataset cannot be reached."""
    if data.synthetic_pairs:
        return _limited(synthetic_translation_dataset(
            data.synthetic_pairs, seed, data.source_lang, data.target_lang, domain=data.synthetic_domain), data)
    split_map = {"train": data.train_split, "validation": data.validation_split, "test": data.test_split}
    if data.dataset_dir is None:
        ensure_available(data.dataset, "dataset", offline_hint, repo_type="dataset")
    if data.test_dir:
        split_map.pop("test")
    try:
        raw = load_translation_dataset(
            data.dataset, data.dataset_config, data.dataset_dir, data.source_lang, data.target_lang, split_map
        )
    except ConnectionError as err:
        raise SystemExit(f"{err} {offline_hint}") from None
    if data.test_dir:
        raw["test"] = load_parallel_dir(data.test_dir, data.source_lang, data.target_lang,
                                        {"test": data.test_split})["test"]
    return _limited(raw, data)


def _limited(raw: DatasetDict, data: TranslationDataArguments) -> DatasetDict:
    for split, limit in (("train", data.max_train_samples), ("test", data.max_eval_samples)):
        if limit is not None and split in raw:
            raw[split] = raw[split].select(range(min(limit, len(raw[split]))))
    return raw


def fit_lengths(data: TranslationDataArguments, model) -> None:
    """Cut the maximum lengths to the model's positions (with a warning): longer inputs would fail in the model."""
    positions = getattr(model.config, "max_position_embeddings", None)
    for name in ("max_source_length", "max_target_length"):
        if positions and getattr(data, name) > positions:
            logger.warning(f"--{name} {getattr(data, name)} exceeds the model's {positions} positions; using "
                           f"{positions}.")
            setattr(data, name, positions)
