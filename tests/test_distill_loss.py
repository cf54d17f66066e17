import math

import pytest
import torch

from hfqd.distill import distillation_loss


def _batch(seed=0, B=2, L=3, V=5):
    g = torch.Generator().manual_seed(seed)
    s = torch.randn(B, L, V, generator=g)
    t = torch.randn(B, L, V, generator=g)
    labels = torch.randint(0, V, (B, L), generator=g)
    labels[1, 2] = -100  # padding
    return s, t, labels


def _hand(s, t, labels, T, alpha):
    kd = ce = 0.0
    n = 0
    for b in range(s.shape[0]):
        for i in range(s.shape[1]):
            y = int(labels[b, i])
            if y == -100:
                continue
            n += 1
            zs, zt = s[b, i].tolist(), t[b, i].tolist()
            ps = [math.exp(z / T) for z in zs]
            pt = [math.exp(z / T) for z in zt]
            ps = [p / sum(ps) for p in ps]
            pt = [p / sum(pt) for p in pt]
            kd += sum(q * math.log(q / p) for q, p in zip(pt, ps))
            soft = [math.exp(z) for z in zs]
            ce += -math.log(soft[y] / sum(soft))
    return (alpha * T * T * kd + (1 - alpha) * ce) / n


@pytest.mark.parametrize("T, alpha", [(1.0, 0.7), (2.0, 0.5), (3.0, 1.0), (1.0, 0.0)])
def test_matches_hand_computation(T, alpha):
    s, t, labels = _batch()
    out = distillation_loss(s, t, labels, temperature=T, alpha=alpha)
    assert out.loss.item() == pytest.approx(_hand(s, t, labels, T, alpha), rel=1e-5)


def test_padding_positions_do_not_matter():
    s, t, labels = _batch()
    base = distillation_loss(s, t, labels, 2.0, 0.7).loss
    s2, t2 = s.clone(), t.clone()
    s2[1, 2] += 100.0
    t2[1, 2] -= 50.0
    assert torch.allclose(distillation_loss(s2, t2, labels, 2.0, 0.7).loss, base)


def test_zero_for_identical_distributions_and_alpha_one():
    s, _, labels = _batch()
    out = distillation_loss(s, s.clone(), labels, 2.0, 1.0)
    assert out.loss.abs().item() < 1e-6


def test_gradient_accumulation_normaliser():
    s, t, labels = _batch(B=4, L=6)
    full = distillation_loss(s, t, labels, 1.0, 0.7).loss
    n = int((labels != -100).sum())
    parts = [distillation_loss(s[i : i + 2], t[i : i + 2], labels[i : i + 2], 1.0, 0.7, num_items_in_batch=n).loss
             for i in (0, 2)]
    assert torch.allclose(sum(parts), full)


def test_errors():
    s, t, labels = _batch()
    with pytest.raises(ValueError, match="same vocabulary"):
        distillation_loss(s, t[..., :4], labels)
    with pytest.raises(ValueError, match="teacher_logits"):
        distillation_loss(s, None, labels, alpha=0.5)
    with pytest.raises(ValueError, match="alpha"):
        distillation_loss(s, t, labels, alpha=1.5)
    with pytest.raises(ValueError, match="temperature"):
        distillation_loss(s, t, labels, temperature=0)
