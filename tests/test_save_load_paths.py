"""Save and load paths: nothing deleted that a writer did not write, and nothing corrupt loads silently."""

import json
import os
import re
import stat

import pytest
import safetensors.torch
import torch
from safetensors import safe_open
from transformers import AutoModelForSeq2SeqLM

import hfqd.utils
from hfqd.hub import save_packed
from hfqd.hub.attach import SHADOWS_NAME, prepare_packed_student
from hfqd.quant import QuantConfig, quantize_, quantized_parameters
from hfqd.utils import atomic_directory

from .conftest import tiny_marian


def _packed(tmp_path, config=QuantConfig(bits=4, bucket_size=64), name="packed", **kwargs):
    model = quantize_(tiny_marian(), config)
    with torch.no_grad():
        for e in quantized_parameters(model):
            e.shadow.add_(0.01 * torch.randn_like(e.shadow))
    save_packed(model, str(tmp_path / name), **kwargs)
    return model, tmp_path / name


def _logits(model):
    ids = torch.tensor([[3, 4, 5, 6, 1]])
    with torch.no_grad():
        return model.eval()(input_ids=ids, decoder_input_ids=torch.tensor([[0, 7, 8]])).logits


# ---- writers own only their files ----------------------------------------------------------------------------------


def test_save_packed_keeps_checkpoints_and_other_files(tmp_path):
    out = tmp_path / "run"
    (out / "checkpoint-10").mkdir(parents=True)
    (out / "checkpoint-10" / "trainer_state.json").write_text("{}")
    (out / "notes.txt").write_text("mine")
    _packed(tmp_path, name="run")
    assert (out / "checkpoint-10" / "trainer_state.json").read_text() == "{}"
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / "model.safetensors").is_file() and (out / "config.json").is_file()
    assert not [n for n in os.listdir(out) if n.startswith(".")]  # no staging folder left


def test_stale_shadows_are_removed_by_a_save_without_them(tmp_path):
    _packed(tmp_path, save_shadows=True)
    assert (tmp_path / "packed" / SHADOWS_NAME).is_file()
    _packed(tmp_path, save_shadows=False)
    assert not (tmp_path / "packed" / SHADOWS_NAME).exists()  # it would not belong to the new weights


def test_save_to_a_file_path_is_refused(tmp_path):
    target = tmp_path / "model.bin"
    target.write_bytes(b"keep me")
    model = quantize_(tiny_marian(), QuantConfig(bits=4))
    with pytest.raises(NotADirectoryError, match="is a file"):
        save_packed(model, str(target))
    with pytest.raises(NotADirectoryError, match="is a file"), atomic_directory(str(target)):
        pass
    assert target.read_bytes() == b"keep me" and sorted(os.listdir(tmp_path)) == ["model.bin"]


def test_folders_get_the_permissions_of_save_pretrained(tmp_path):
    umask = os.umask(0o022)
    try:
        _packed(tmp_path)
        with atomic_directory(str(tmp_path / "whole")) as tmp:
            (open(os.path.join(tmp, "f"), "w")).close()
        tiny_marian().save_pretrained(tmp_path / "plain")
    finally:
        os.umask(umask)
    modes = {name: stat.S_IMODE(os.stat(tmp_path / name).st_mode) for name in ("packed", "whole", "plain")}
    assert modes == {"packed": 0o755, "whole": 0o755, "plain": 0o755}


def test_replacing_a_folder_never_leaves_the_path_empty(tmp_path, monkeypatch):
    final = tmp_path / "export"
    final.mkdir()
    (final / "old").write_text("old")
    real_replace = os.replace

    def replace(src, dst):  # the two-rename fallback would move `final` away first: fail if it is used
        if os.path.abspath(dst) == str(final) or os.path.abspath(src) == str(final):
            raise AssertionError("the folder was moved away instead of exchanged")
        return real_replace(src, dst)

    monkeypatch.setattr(hfqd.utils.os, "replace", replace)
    with atomic_directory(str(final)) as tmp:
        (open(os.path.join(tmp, "new"), "w")).close()
    assert sorted(os.listdir(final)) == ["new"] and sorted(os.listdir(tmp_path)) == ["export"]


# ---- exact round trips --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("config", [
    QuantConfig(bits=4, bucket_size=64),
    QuantConfig(bits=2, bucket_size=50),
    QuantConfig(bits=3, bucket_size=64, method="learned"),
], ids=["uniform4", "uniform2", "learned3"])
def test_reattaching_a_packed_student_keeps_its_outputs(tmp_path, config):
    model, folder = _packed(tmp_path, config)
    if config.method == "learned":
        with torch.no_grad():  # points that no longer span [0, 1], as after training
            for e in quantized_parameters(model):
                e.quantizer.points.mul_(0.8).add_(0.05)
        save_packed(model, str(folder))
    loaded = AutoModelForSeq2SeqLM.from_pretrained(str(folder))
    before = _logits(loaded)
    assert torch.equal(before, _logits(model))
    assert prepare_packed_student(loaded)
    assert torch.equal(_logits(loaded), before)
    assert not hasattr(loaded, "hf_quantizer")  # a checkpointable hfqd model now, not a transformers-quantized one


def test_a_loaded_packed_model_can_be_saved_again(tmp_path):
    _, folder = _packed(tmp_path)
    loaded = AutoModelForSeq2SeqLM.from_pretrained(str(folder))
    with pytest.raises(ValueError, match="hfqd.save_packed"):
        loaded.save_pretrained(tmp_path / "plain")
    save_packed(loaded, str(tmp_path / "again"))
    first = safetensors.torch.load_file(folder / "model.safetensors")
    second = safetensors.torch.load_file(tmp_path / "again" / "model.safetensors")
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


# ---- corrupt files: one error naming the file and the tensor or field ------------------------------------------------


def _rewrite(folder, edit_tensors=None, edit_config=None, edit_metadata=None):
    path = folder / "model.safetensors"
    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata()
    tensors = safetensors.torch.load_file(path)
    if edit_tensors:
        edit_tensors(tensors)
    if edit_metadata:
        edit_metadata(metadata)
    safetensors.torch.save_file(tensors, path, metadata=metadata)
    if edit_config:
        config = json.loads((folder / "config.json").read_text())
        edit_config(config["quantization_config"])
        (folder / "config.json").write_text(json.dumps(config))


def _set(mapping, key, value):
    mapping[key] = value


Q = "model.encoder.layers.0.fc1.weight"


def _edit_metadata_bucket(metadata):
    info = json.loads(metadata["hfqd"])
    for entry in info.values():
        entry["bucket_size"] = 65
    metadata["hfqd"] = json.dumps(info)


CORRUPTIONS = {
    "missing fp tensor": (dict(edit_tensors=lambda t: t.pop("model.encoder.layers.0.fc1.bias")),
                          "model.encoder.layers.0.fc1.bias is missing"),
    "missing min": (dict(edit_tensors=lambda t: t.pop(Q + "_qmin")), Q + "_qmin is missing"),
    "missing scale": (dict(edit_tensors=lambda t: t.pop(Q + "_qscale")), Q + "_qscale is missing"),
    "missing codes": (dict(edit_tensors=lambda t: t.pop(Q)), f"entry {Q} is missing"),
    "NaN scale": (dict(edit_tensors=lambda t: t[Q + "_qscale"].__setitem__(0, float("nan"))), "checksum"),
    "flipped code byte": (dict(edit_tensors=lambda t: t[Q].__setitem__(3, t[Q][3] ^ 0xFF)), "checksum"),
    "wrong bits": (dict(edit_config=lambda q: q["tensor_bits"].__setitem__(Q, 3)), "bits=4"),
    "wrong bucket size": (dict(edit_config=lambda q: _set(q, "bucket_size", 65)), "bucket_size=64"),
    "file and config agree on a wrong bucket size": (
        dict(edit_config=lambda q: _set(q, "bucket_size", 65), edit_metadata=_edit_metadata_bucket), "checksum"),
    "missing config field": (dict(edit_config=lambda q: q.pop("bits")), re.escape("lacks ['bits']")),
}


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_corrupt_packed_files_fail_with_one_clear_error(tmp_path, name):
    _, folder = _packed(tmp_path)
    edits, message = CORRUPTIONS[name]
    _rewrite(folder, **edits)
    with pytest.raises(ValueError, match=message) as err:
        AutoModelForSeq2SeqLM.from_pretrained(str(folder))
    if "config field" not in name:  # the config is parsed before the file is known; it names config.json
        assert str(folder / "model.safetensors") in str(err.value)


def test_nan_scale_without_checksums_is_still_refused(tmp_path):
    _, folder = _packed(tmp_path)

    def strip(metadata):
        metadata.pop("hfqd")

    _rewrite(folder, edit_tensors=lambda t: t[Q + "_qscale"].__setitem__(0, float("nan")), edit_metadata=strip)
    with pytest.raises(ValueError, match=f"{Q}: The stored bucket scale holds non-finite"):
        AutoModelForSeq2SeqLM.from_pretrained(str(folder))


def test_out_of_range_learned_codes_are_refused(tmp_path):
    model = quantize_(tiny_marian(), QuantConfig(bits=2, bucket_size=64, method="learned"))
    save_packed(model, str(tmp_path / "packed"))

    def three_points(tensors):
        tensors[Q + "_qpoints"] = tensors[Q + "_qpoints"][:3].clone()
        tensors[Q][:] = 0xFF  # code 3 everywhere, beyond the 3 points

    def strip(metadata):
        metadata.pop("hfqd")

    _rewrite(tmp_path / "packed", edit_tensors=three_points, edit_metadata=strip)
    with pytest.raises(ValueError, match="exceeds the 3 levels"):
        AutoModelForSeq2SeqLM.from_pretrained(str(tmp_path / "packed"))


def test_truncated_file_is_refused(tmp_path):
    _, folder = _packed(tmp_path)
    path = folder / "model.safetensors"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ValueError, match="truncated"):
        AutoModelForSeq2SeqLM.from_pretrained(str(folder))


def test_non_finite_weights_are_refused_by_name():
    model = tiny_marian()
    with torch.no_grad():
        model.model.encoder.layers[0].fc2.weight[0, 0] = float("inf")
    with pytest.raises(ValueError, match=r"model.encoder.layers.0.fc2.weight holds 1 non-finite"):
        quantize_(model, QuantConfig(bits=4))


def test_shadows_of_a_hub_student_are_found_in_its_repository(tmp_path, monkeypatch):
    import hfqd.hub.attach as attach

    model, folder = _packed(tmp_path, save_shadows=True)
    loaded = AutoModelForSeq2SeqLM.from_pretrained(str(folder))
    loaded.name_or_path = loaded.config._name_or_path = "me/tiny-4bit"  # as if loaded from the Hub
    asked = []

    def download(repo_id, filename, **kwargs):
        asked.append((repo_id, filename))
        return str(folder / filename)

    monkeypatch.setattr(attach, "hf_hub_download", download)
    assert prepare_packed_student(loaded)
    assert asked == [("me/tiny-4bit", SHADOWS_NAME)]
    shadows = {e.name: e.shadow for e in quantized_parameters(loaded)}
    original = {e.name: e.shadow for e in quantized_parameters(model)}
    assert all(torch.equal(shadows[name], original[name]) for name in original)  # the saved shadows, not requantized
