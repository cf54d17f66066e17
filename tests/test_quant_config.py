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
