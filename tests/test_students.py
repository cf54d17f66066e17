import pytest
import torch

from hfqd.distill import check_same_outputs, make_student_from_config, make_student_from_teacher, pick_layers

from .conftest import tiny_marian


def test_pick_layers():
    assert pick_layers(6, 1) == [0]
    assert pick_layers(6, 2) == [0, 5]
    assert pick_layers(6, 3) == [0, 2, 5]
    assert pick_layers(3, 3) == [0, 1, 2]
    with pytest.raises(ValueError, match="1 to 3"):
        pick_layers(3, 4)


def test_student_from_teacher_copies_chosen_layers():
    teacher = tiny_marian(layers=3)
    student = make_student_from_teacher(teacher, encoder_layers=2, decoder_layers=1)
    assert student.config.encoder_layers == 2 and student.config.decoder_layers == 1
    t, s = teacher.model, student.model
    assert torch.equal(s.encoder.layers[0].fc1.weight, t.encoder.layers[0].fc1.weight)
    assert torch.equal(s.encoder.layers[1].fc1.weight, t.encoder.layers[2].fc1.weight)
    assert torch.equal(s.decoder.layers[0].self_attn.q_proj.weight, t.decoder.layers[0].self_attn.q_proj.weight)
    assert torch.equal(s.shared.weight, t.shared.weight)
    assert student.lm_head.weight is student.model.shared.weight
    assert sum(p.numel() for p in student.parameters()) < sum(p.numel() for p in teacher.parameters())


def test_student_from_config_shares_vocabulary():
    teacher = tiny_marian(layers=2)
    student = make_student_from_config(teacher, d_model=16, encoder_layers=1, decoder_layers=1,
                                       encoder_ffn_dim=32, decoder_ffn_dim=32)
    assert student.config.d_model == 16 and student.config.vocab_size == teacher.config.vocab_size
    check_same_outputs(teacher, student)
    with pytest.raises(ValueError, match="no field"):
        make_student_from_config(teacher, d_modle=16)


def test_tokenizer_vocabulary_mismatch():
    from .helpers import tiny_corpus

    _, tok_a, _ = tiny_corpus(50, seed=0)
    _, tok_b, _ = tiny_corpus(50, seed=1)
    teacher = tiny_marian(vocab_size=len(tok_a))
    student = tiny_marian(vocab_size=len(tok_a))
    if tok_a.get_vocab() != tok_b.get_vocab():
        with pytest.raises(ValueError, match="same tokenizer"):
            check_same_outputs(teacher, student, tok_a, tok_b)
    check_same_outputs(teacher, student, tok_a, tok_a)


def test_students_generate_like_their_teacher(tmp_path):
    """Generation settings live beside the config: a student that lost them would decode with transformers'
    defaults (20 tokens, pad allowed) instead of its teacher's beams, length limit and banned tokens."""
    from transformers import AutoModelForSeq2SeqLM

    from hfqd.hub import save_packed
    from hfqd.quant import QuantConfig, quantize_

    teacher = tiny_marian(layers=2)
    teacher.generation_config.update(num_beams=4, max_new_tokens=40, bad_words_ids=[[2]])
    expected = teacher.generation_config.to_dict()
    built = {
        "copied layers": make_student_from_teacher(teacher, encoder_layers=1, decoder_layers=1),
        "new sizes": make_student_from_config(teacher, d_model=16, encoder_ffn_dim=32, decoder_ffn_dim=32),
    }
    for how, student in built.items():
        assert student.generation_config.to_dict() == expected, how
        assert student.generation_config is not teacher.generation_config, how
    student = quantize_(built["new sizes"], QuantConfig(bits=4, bucket_size=16))
    save_packed(student, str(tmp_path))
    loaded = AutoModelForSeq2SeqLM.from_pretrained(str(tmp_path)).generation_config
    assert (loaded.num_beams, loaded.max_new_tokens, loaded.bad_words_ids) == (4, 40, [[2]])
