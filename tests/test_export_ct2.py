"""CTranslate2 export: exact in float32 for both vocabulary layouts, packed students included; clear errors."""

import builtins
import json
import os

import pytest
import torch
from transformers import AutoModelForSeq2SeqLM

from hfqd import export_ctranslate2
from hfqd.eval.translation import translate, translate_ctranslate2
from hfqd.export.cli import main as cli_main
from hfqd.hub import save_packed
from hfqd.quant import QuantConfig, quantize_

from .conftest import TinyConvNet
from .helpers import opus_mt_teacher, tiny_corpus

ctranslate2 = pytest.importorskip("ctranslate2", reason='CTranslate2 export needs the deploy extra (".[deploy]")')

SOURCES = ["The dog sees a cat .", "A man rides a red bike .", "Two women eat bread .", "The child runs ."]


def _fast_tokenizer_teacher(folder):
    """`<pad>` first (id 0) and a non-zero start-token embedding: the Multi30k teacher's layout. (Training makes
    that row non-zero: the tied output layer's gradient reaches it even though the input embedding skips it.)"""
    from hfqd.distill import make_marian

    _, tokenizer, _ = tiny_corpus(200)
    model = make_marian(tokenizer, d_model=32, encoder_layers=2, decoder_layers=2, attention_heads=2, ffn_dim=64,
                        dropout=0.0, max_position_embeddings=64, seed=0)
    with torch.no_grad():
        model.final_logits_bias.normal_(std=0.1)  # exported as the output layer's bias
        model.get_input_embeddings().weight[0].normal_(std=0.05)
    assert tokenizer.pad_token_id == 0
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return model.eval(), tokenizer


LAYOUTS = {"pad_first": _fast_tokenizer_teacher, "opus_mt": lambda folder: opus_mt_teacher(folder)}


def _same_greedy(model, tokenizer, ct2_dir):
    """Greedy token ids of both engines up to the end token, plus the detokenized strings of both.

    (At the length limit transformers forces an end token and CTranslate2 just stops: the same translation.)"""
    translator = ctranslate2.Translator(str(ct2_dir), intra_threads=1)
    enc = tokenizer(SOURCES, return_tensors="pt", padding=True)
    with torch.no_grad():
        generated = model.generate(**enc, num_beams=1, do_sample=False, max_new_tokens=12)
    eos = tokenizer.eos_token_id
    ours = [row[: row.index(eos)] if eos in row else row for row in generated[:, 1:].tolist()]  # no start token
    results = translator.translate_batch([tokenizer.convert_ids_to_tokens(x) for x in enc["input_ids"].tolist()],
                                         beam_size=1, max_decoding_length=11)
    theirs = [tokenizer.convert_tokens_to_ids(r.hypotheses[0]) for r in results]
    texts = (translate(model, tokenizer, SOURCES, batch_size=2, max_new_tokens=12),
             translate_ctranslate2(translator, tokenizer, SOURCES, batch_size=2, max_new_tokens=12))
    return (ours, texts[0]), (theirs, texts[1])


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("packed", [False, True], ids=["fp32", "packed4"])
def test_float32_export_decodes_like_transformers(tmp_path, layout, packed):
    model, tokenizer = LAYOUTS[layout](tmp_path / "model")
    source = tmp_path / "model"
    if packed:
        quantize_(model, QuantConfig(bits=4, bucket_size=64))
        save_packed(model, str(tmp_path / "packed"), tokenizer=tokenizer)
        source = tmp_path / "packed"
        model = AutoModelForSeq2SeqLM.from_pretrained(str(source)).eval()
    export_ctranslate2(str(source), str(tmp_path / "ct2"), quantization="float32")
    ours, theirs = _same_greedy(model, tokenizer, tmp_path / "ct2")
    assert ours == theirs and all(len(ids) > 2 for ids in ours[0])
    info = json.loads((tmp_path / "ct2" / "hfqd_export.json").read_text())
    # OPUS-MT's <pad> start row is zero and <pad> is never generated: CTranslate2's own shortcut is exact there.
    # Quantized, that row is no longer exactly zero (its bucket's levels need not include 0): start from it.
    assert info["zero_start"] == info["dropped_pad"] == (layout == "opus_mt" and not packed)


def test_in_memory_quantized_student_and_self_contained_folder(tmp_path):
    model, tokenizer = opus_mt_teacher(tmp_path / "model")
    quantize_(model, QuantConfig(bits=2, bucket_size=64))
    export_ctranslate2(model, str(tmp_path / "ct2"), quantization="float32", tokenizer=tokenizer)
    ours, theirs = _same_greedy(model, tokenizer, tmp_path / "ct2")
    assert ours == theirs
    files = set(os.listdir(tmp_path / "ct2"))
    assert {"model.bin", "config.json", "source.spm", "target.spm", "vocab.json"} <= files
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".")]  # no temporary folder left


def test_int8_export_runs(tmp_path):
    model, tokenizer = _fast_tokenizer_teacher(tmp_path / "model")
    export_ctranslate2(str(tmp_path / "model"), str(tmp_path / "ct2"))
    _, (ids, texts) = _same_greedy(model, tokenizer, tmp_path / "ct2")
    assert len(ids) == len(texts) == len(SOURCES)
    assert json.loads((tmp_path / "ct2" / "hfqd_export.json").read_text())["quantization"] == "int8"


def test_cli_and_bad_inputs(tmp_path, monkeypatch, capsys):
    _fast_tokenizer_teacher(tmp_path / "model")
    out = tmp_path / "ct2"
    cli_main([str(tmp_path / "model"), str(out), "--quantization", "int16"])
    assert "Wrote" in capsys.readouterr().out and (out / "model.bin").is_file()
    with pytest.raises(SystemExit, match="exists; pass force=True"):
        cli_main([str(tmp_path / "model"), str(out)])
    before = (out / "model.bin").stat().st_size
    cli_main([str(tmp_path / "model"), str(out), "--force", "--quantization", "float32"])
    assert (out / "model.bin").stat().st_size > before  # replaced
    with pytest.raises(ValueError, match="Unknown quantization 'int3'"):
        export_ctranslate2(str(tmp_path / "model"), str(tmp_path / "x"), quantization="int3")
    with pytest.raises(ValueError, match="MarianConfig"):
        vision = TinyConvNet()
        vision.config = type("Config", (), {"is_encoder_decoder": False})()
        export_ctranslate2(vision, str(tmp_path / "y"), tokenizer=object())
    with pytest.raises(ValueError, match="needs its tokenizer"):
        export_ctranslate2(TinyConvNet(), str(tmp_path / "z"))
    with pytest.raises(SystemExit, match="'.*missing' does not exist"):
        cli_main([str(tmp_path / "missing"), str(tmp_path / "m")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match="empty has no config.json: it is not a saved model folder"):
        cli_main([str(tmp_path / "empty"), str(tmp_path / "e")])
    assert not (tmp_path / "m").exists() and not (tmp_path / "e").exists()

    real_import = builtins.__import__

    def no_ctranslate2(name, *args, **kwargs):
        if name.startswith("ctranslate2"):
            raise ImportError("No module named 'ctranslate2'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ctranslate2)
    with pytest.raises(SystemExit, match=r'pip install -e "\.\[deploy\]"'):
        cli_main([str(tmp_path / "model"), str(tmp_path / "w")])
    assert not (tmp_path / "x").exists() and not (tmp_path / "w").exists()


def test_export_leaves_the_model_unchanged(tmp_path):
    model, tokenizer = _fast_tokenizer_teacher(tmp_path / "model")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    export_ctranslate2(model, str(tmp_path / "ct2"), quantization="int8", tokenizer=tokenizer)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_vocab_map_counts_and_shortlists(tmp_path):
    from hfqd.export import count_cooccurrence, vocab_map_lines, write_vocab_map

    raw, tokenizer, _ = tiny_corpus(120)
    pairs = raw["train"]["translation"]
    sources, targets = [p["en"] for p in pairs], [p["de"] for p in pairs]
    stats = count_cooccurrence(sources, targets, tokenizer, chunk=50)  # chunks are merged
    src = [set(ids) for ids in tokenizer(sources)["input_ids"]]
    tgt = [set(ids) for ids in tokenizer(text_target=targets)["input_ids"]]
    s, t = max(src[0]), max(tgt[0])
    assert stats.source_counts[s] == sum(s in ids for ids in src)
    key = (stats.pairs == s * stats.vocab_size + t).nonzero()
    assert stats.pair_counts[key].item() == sum(s in a and t in b for a, b in zip(src, tgt))

    lines = vocab_map_lines(stats, tokenizer, per_token=3, always=5)
    assert lines[0].startswith("\t") and len(lines[0].split("\t")[1].split()) == 5
    assert all(1 <= len(line.split("\t")[1].split()) <= 3 for line in lines[1:])
    with pytest.raises(ValueError, match="misaligned"):
        count_cooccurrence(sources, targets[:-1], tokenizer)
    with pytest.raises(ValueError, match="No training pairs"):
        count_cooccurrence([], [], tokenizer)

    # A map that lists every token changes nothing; a one-candidate map confines the output to its candidates.
    model, tokenizer = _fast_tokenizer_teacher(tmp_path / "model")
    full = write_vocab_map(str(tmp_path / "full.txt"), sources, targets, tokenizer, per_token=10**6,
                           always=len(tokenizer))
    narrow = write_vocab_map(str(tmp_path / "narrow.txt"), sources, targets, tokenizer, per_token=1, always=0)
    plain = export_ctranslate2(str(tmp_path / "model"), str(tmp_path / "plain"), "float32")
    texts = {}
    for name, vmap in (("full", full), ("narrow", narrow)):
        folder = export_ctranslate2(str(tmp_path / "model"), str(tmp_path / name), "float32", vocab_map=vmap)
        translator = ctranslate2.Translator(folder, intra_threads=1)
        texts[name] = translate_ctranslate2(translator, tokenizer, SOURCES, 2, 1, 12, use_vmap=True)
    texts["plain"] = translate_ctranslate2(ctranslate2.Translator(plain), tokenizer, SOURCES, 2, 1, 12)
    assert texts["full"] == texts["plain"]
    allowed = {tok for line in open(narrow).read().splitlines() for tok in line.split("\t")[1].split()}
    narrow_ct2 = ctranslate2.Translator(str(tmp_path / "narrow"), intra_threads=1)
    batch = [tokenizer.convert_ids_to_tokens(ids) for ids in tokenizer(SOURCES)["input_ids"]]
    results = narrow_ct2.translate_batch(batch, beam_size=1, max_decoding_length=11, use_vmap=True)
    produced = {tok for r in results for tok in r.hypotheses[0]}
    assert produced
    assert produced <= allowed | set(tokenizer.all_special_tokens)
    with pytest.raises(FileNotFoundError, match="Vocabulary map"):
        export_ctranslate2(str(tmp_path / "model"), str(tmp_path / "x"), vocab_map=str(tmp_path / "none.txt"))
    cli_main([str(tmp_path / "model"), str(tmp_path / "cli"), "--vocab_map", narrow])
    assert (tmp_path / "cli" / "vmap.txt").read_text() == open(narrow).read()  # the map travels with the model
