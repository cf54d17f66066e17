import pytest

from hfqd.quant import QuantConfig


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"bits": 0}, "`bits` must be an integer from 1 to 8, got 0"),
        ({"bits": 16}, "`bits`"),
        ({"bits": True}, "`bits`"),
        ({"bits": "4"}, "`bits`"),
        ({"bucket_size": 1}, "`bucket_size` must be an integer >= 2"),
        ({"bucket_size": 0}, "`bucket_size`"),
        ({"bucket_size": 2.5}, "`bucket_size`"),
        ({"rounding": "floor"}, "`rounding` must be one of"),
        ({"seed": -1}, "`seed`"),
        ({"module_types": ()}, "`module_types` is empty"),
        ({"include": ("",)}, "`include`"),
        ({"exclude": (3,)}, "`exclude`"),
        ({"module_bits": {"model.shared": 9}}, "`module_bits` entries"),
        ({"module_bits": ["model.shared"]}, "`module_bits` entries"),
        ({"module_bits": {"": 4}}, "`module_bits` entries"),
    ],
)
def test_bad_values_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        QuantConfig(**kwargs)


def test_round_trip_and_list_normalisation():
    config = QuantConfig(bits=2, bucket_size=None, include=["model.*"], exclude="lm_head")
    assert config.include == ("model.*",) and config.exclude == ("lm_head",)
    assert QuantConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="Unknown QuantConfig keys"):
        QuantConfig.from_dict({"bitz": 4})


def test_module_bits_forms_and_first_match():
    config = QuantConfig(bits=2, module_bits=["model.shared=4", ("*.fc?", 3)])
    assert config.module_bits == (("model.shared", 4), ("*.fc?", 3))
    assert QuantConfig(bits=2, module_bits={"model.shared": 4, "*.fc?": 3}) == config
    assert QuantConfig.from_dict(config.to_dict()) == config
    # a tied weight matches through any of its names; the first matching pair wins; the rest keep `bits`
    assert config.bits_for(["model.encoder.embed_tokens", "model.shared"]) == 4
    assert config.bits_for(["model.encoder.layers.0.fc1"]) == 3
    assert config.bits_for(["model.encoder.layers.0.self_attn.q_proj"]) == 2


def test_module_bits_from_the_command_line(tmp_path):
    from transformers import HfArgumentParser

    from hfqd import DistillationArguments

    (args,) = HfArgumentParser(DistillationArguments).parse_args_into_dataclasses(
        ["--output_dir", str(tmp_path), "--bits", "2", "--module_bits", "model.shared=4", "lm_head=8"])
    assert args.quant_config().module_bits == (("model.shared", 4), ("lm_head", 8))
