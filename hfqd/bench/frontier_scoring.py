"""Scoring one frontier row as it is deployed: saved (packed when quantized) and loaded back as a user loads it,
BLEU and chrF in transformers and after an int8 CTranslate2 export, speed against the teacher with both engines
interleaved, peak memory, and a model card beside a quantized row's weights."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import torch
from transformers import AutoModelForSeq2SeqLM, PreTrainedTokenizerBase

from ..data.parallel import TokenizedSplits
from ..eval.deploy import ctranslate2_peak_rss_mb, folder_megabytes, interleaved_rates
from ..eval.report import table
from ..eval.translation import corpus_scores, translate, translate_ctranslate2
from ..export import export_ctranslate2
from ..hub import save_packed
from ..hub.card import CardInfo, make_model_card
from ..quant import huffman_size, is_quantized, model_size
from ..utils import command_line, run_header
from .time_budget import torch_threads


@dataclass
class RowScorer:
    """Scores rows against one teacher on one machine.

    Args:
        teacher: the teacher model (timed beside every row).
        teacher_folder: its folder (file size, the card's base model).
        teacher_ct2: where its int8 CTranslate2 export lives (written by the teacher's own row, or on demand).
        teacher_result: the teacher row's results file (the card's comparison line).
        tokenizer: the shared tokenizer.
        data: the tokenized splits with raw sources and references.
        test_splits: the splits scored, the first of them timed.
        dataset: the data folder, for the card.
        beams / max_length: the beam search scored and the length limit of every translation.
        threads / timed_sentences / speed_repeats: the timing setup (see `FrontierArguments`).
        commit: the repository commit recorded in each result.
    """

    teacher: torch.nn.Module
    teacher_folder: str
    teacher_ct2: str
    teacher_result: str
    tokenizer: PreTrainedTokenizerBase
    data: TokenizedSplits
    test_splits: list[str]
    dataset: str
    beams: int
    max_length: int
    threads: int
    timed_sentences: int
    speed_repeats: int
    commit: str

    @cached_property
    def teacher_file_mb(self) -> float:
        return _weights_mb(self.teacher_folder)

    def score(self, model, folder: str, shape: str, row: str, record: dict, start_from: str) -> dict:
        """The row's results; ``model`` is saved in ``folder`` (the teacher, ``row == "teacher"``, is not) and
        ``record`` says how it was trained."""
        size = model_size(model)
        huffman = None
        if is_quantized(model):
            save_packed(model, folder, tokenizer=self.tokenizer)
            huffman = huffman_size(model).megabytes
            model = AutoModelForSeq2SeqLM.from_pretrained(folder).eval()  # scored as a user loads it
        elif row != "teacher":
            model.save_pretrained(folder)
            self.tokenizer.save_pretrained(folder)
        file_mb = self.teacher_file_mb if row == "teacher" else _weights_mb(folder)
        ct2 = self.teacher_ct2 if row == "teacher" else os.path.join(folder, "ctranslate2-int8")
        export_ctranslate2(model, ct2, "int8", tokenizer=self.tokenizer, force=True)
        metrics = self._quality(model, ct2)
        metrics.update(self._speed(model, ct2))
        metrics["ct2_folder_mb"] = folder_megabytes(ct2)
        probe = ctranslate2_peak_rss_mb(ct2, self._timed_sources(), max_length=self.max_length)
        metrics.update({f"ct2_{k}": v for k, v in probe.items()})
        result = {
            "shape": shape, "row": row, "start": start_from, "params": size.params,
            "bits": size.code_bits_per_weight, "file_mb": file_mb, "huffman_mb": huffman,
            "vs_teacher_file": self.teacher_file_mb / file_mb, **record, "metrics": metrics,
            **run_header(command_line("scripts/benchmark_translation.py"), self.commit),
        }
        if huffman is not None:
            self._card(folder, result, size)
        return result

    def _timed_sources(self) -> list[str]:
        return self.data.sources[self.test_splits[0]][: self.timed_sentences]

    def _card(self, folder: str, result: dict, size) -> None:
        """A model card beside a quantized row's packed weights: data, command and metrics, next to the teacher."""
        config = json.loads(Path(folder, "config.json").read_text())["quantization_config"]
        teacher = json.loads(Path(self.teacher_result).read_text())["metrics"]
        keys = ("bleu_test2016_beam4", "bleu_test2017_beam4", "ct2_int8_bleu_test2016_beam4",
                "speed_ct2_vs_teacher_ct2")
        rows = [("teacher", *(f"{teacher[k]:.2f}" for k in keys)),
                (f"{result['shape']} {result['row']}", *(f"{result['metrics'][k]:.2f}" for k in keys))]
        results = table(["model", "BLEU test2016", "BLEU test2017", "CT2 int8 BLEU test2016", "CT2 speed vs teacher"],
                        rows)
        method = re.match(r"[a-z]+", result["row"]).group(0)  # qd, pm, qat, dq
        card = make_model_card(CardInfo(
            repo_id=f"{result['shape']}-{result['row']}", base_model=self.teacher_folder,
            datasets=[self.dataset], bits=result["bits"], bucket_size=config["bucket_size"],
            method=method, results_markdown=f"Beam 4, sacreBLEU.\n\n{results}{_training_note(result)}",
            file_bytes=os.path.getsize(os.path.join(folder, "model.safetensors")), theoretical_bytes=size.bits / 8,
            fp32_bytes=size.fp32_bits // 8, command=result["command"], language=["en", "de"],
            ctranslate2_folder="ctranslate2-int8",
        ))
        card.save(os.path.join(folder, "README.md"))

    def _quality(self, model, ct2: str) -> dict:
        import ctranslate2

        metrics = {}
        with torch_threads(self.threads):
            translator = ctranslate2.Translator(ct2, intra_threads=self.threads)
            for split in self.test_splits:
                sources, refs = self.data.sources[split], self.data.references[split]
                beams, length = self.beams, self.max_length
                hyps = translate(model, self.tokenizer, sources, 32, beams, length, length)
                for name, value in corpus_scores(hyps, refs).items():
                    metrics[f"{name}_{split}_beam{beams}"] = value
                hyps = translate_ctranslate2(translator, self.tokenizer, sources, 32, beams, length, length)
                for name, value in corpus_scores(hyps, refs).items():
                    metrics[f"ct2_int8_{name}_{split}_beam{beams}"] = value
        return metrics

    def _speed(self, model, ct2: str) -> dict:
        """Greedy sentences per CPU-second of this model and the teacher, both engines at batch 32 and CTranslate2
        at batch 1 too, interleaved (wall-clock rates beside them; see :mod:`hfqd.eval.deploy`)."""
        import ctranslate2

        sources, length = self._timed_sources(), self.max_length
        if not os.path.isfile(os.path.join(self.teacher_ct2, "model.bin")):  # its row was measured by another run
            export_ctranslate2(self.teacher, self.teacher_ct2, "int8", tokenizer=self.tokenizer, force=True)

        def hf(m):
            return lambda: len(translate(m, self.tokenizer, sources, 32, 1, length, length))

        def fast(t, batch):
            return lambda: len(translate_ctranslate2(t, self.tokenizer, sources, batch, 1, length, length))

        with torch_threads(self.threads):
            teacher_ct2 = ctranslate2.Translator(self.teacher_ct2, intra_threads=self.threads)
            ct2_model = ctranslate2.Translator(ct2, intra_threads=self.threads)
            rates = interleaved_rates({"teacher_hf": hf(self.teacher), "hf": hf(model),
                                       "teacher_ct2": fast(teacher_ct2, 32), "ct2": fast(ct2_model, 32),
                                       "teacher_ct2_b1": fast(teacher_ct2, 1), "ct2_b1": fast(ct2_model, 1)},
                                      self.speed_repeats)
        cpu = {name: r["cpu"] for name, r in rates.items()}
        return {
            "sent_per_cpu_s_hf_b32": cpu["hf"], "sent_per_cpu_s_ct2_int8_b32": cpu["ct2"],
            "sent_per_cpu_s_ct2_int8_b1": cpu["ct2_b1"],
            "sent_per_s_wall_hf_b32": rates["hf"]["wall"], "sent_per_s_wall_ct2_int8_b32": rates["ct2"]["wall"],
            "sent_per_s_wall_ct2_int8_b1": rates["ct2_b1"]["wall"],
            "speed_hf_vs_teacher_hf": cpu["hf"] / cpu["teacher_hf"],
            "speed_ct2_vs_teacher_ct2": cpu["ct2"] / cpu["teacher_ct2"],
            "speed_ct2_b1_vs_teacher_ct2_b1": cpu["ct2_b1"] / cpu["teacher_ct2_b1"],
            "speed_ct2_vs_teacher_hf": cpu["ct2"] / cpu["teacher_hf"],
            "speed_ct2_vs_teacher_ct2_wall": rates["ct2"]["wall"] / rates["teacher_ct2"]["wall"],
            "threads": self.threads,
        }


def _weights_mb(folder: str) -> float:
    return os.path.getsize(os.path.join(folder, "model.safetensors")) / 1e6


def _training_note(result: dict) -> str:
    """Where and how long a row trained, for its model card."""
    if not result.get("trained_on"):
        return ""
    epochs = result["train_epochs"]
    return (f"\n\nTrained on {result['trained_on']}: {epochs:g} epoch{'' if epochs == 1 else 's'} in "
            f"{result['train_seconds']:.0f} s, starting from {result['start']}; best validation BLEU (greedy) "
            f"{result['best_validation_bleu_greedy']:.2f}.")


__all__ = ["RowScorer"]
