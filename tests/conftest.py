"""Shared fixtures: tiny models built from configs, never downloaded."""

from __future__ import annotations

import pytest
import torch
from torch import nn


def tiny_marian_config(vocab_size: int = 64, d_model: int = 32, layers: int = 1, **overrides):
    from transformers import MarianConfig

    kwargs = dict(
        vocab_size=vocab_size,
        decoder_vocab_size=vocab_size,
        d_model=d_model,
        encoder_layers=layers,
        decoder_layers=layers,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=2 * d_model,
        decoder_ffn_dim=2 * d_model,
        max_position_embeddings=64,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
        forced_eos_token_id=1,
        scale_embedding=True,
        dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
        share_encoder_decoder_embeddings=True,
        tie_word_embeddings=True,
    )
    kwargs.update(overrides)
    return MarianConfig(**kwargs)


def tiny_marian(seed: int = 0, **overrides):
    from transformers import MarianMTModel

    torch.manual_seed(seed)
    return MarianMTModel(tiny_marian_config(**overrides)).eval()


class TinyConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.norm = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4 * 8 * 8, 10)

    def forward(self, x):
        return self.fc(torch.relu(self.norm(self.conv(x))).flatten(1))


@pytest.fixture
def marian():
    return tiny_marian()


@pytest.fixture
def convnet():
    torch.manual_seed(0)
    return TinyConvNet()


@pytest.fixture
def fake_hub(monkeypatch):
    """A local HTTP server standing in for the Hub (see hub_server.py); records what is uploaded."""
    import huggingface_hub.hf_api as hf_api
    import transformers.utils.hub as transformers_hub
    from huggingface_hub import constants

    from .hub_server import FakeHub

    with FakeHub() as hub:
        monkeypatch.setattr(constants, "ENDPOINT", hub.endpoint)
        monkeypatch.setattr(hf_api.api, "endpoint", hub.endpoint)  # the module-level client behind create_repo()
        monkeypatch.setattr(transformers_hub, "_hf_api", None)  # transformers' one client keeps its first endpoint
        monkeypatch.setattr(hf_api, "is_xet_available", lambda: False)  # plain commits, no xet storage
        monkeypatch.setenv("HF_TOKEN", "hf_test")
        yield hub
