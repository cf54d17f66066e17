"""The distillation loss, as a pure function so it can be tested and reused without a Trainer."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class DistillationLossOutput:
    """The total loss and its two parts, each already divided by the same normaliser."""

    loss: torch.Tensor
    kd: torch.Tensor
    ce: torch.Tensor


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor | None,
    labels: torch.Tensor,
    temperature: float = 1.0,
    alpha: float = 0.7,
    ignore_index: int = -100,
    num_items_in_batch: torch.Tensor | int | None = None,
    teacher_topk: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
) -> DistillationLossOutput:
    """``(alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE(student, labels)) / N``.

    Works per target position: logits ``[..., V]`` and labels ``[...]`` (tokens of a seq2seq batch, or one position
    per image for a classifier). Positions whose label is ``ignore_index`` (padding) count in neither term. The KL
    term is summed over the vocabulary and the positions, i.e. the textbook ("batchmean") form, not PyTorch's
    element-wise mean; the T^2 factor keeps its gradient scale independent of T (Hinton et al., 2015).

    Args:
        student_logits: ``[..., V]``.
        teacher_logits: ``[..., V]`` or `None` when ``alpha == 0``.
        labels: ``[...]`` integer targets.
        temperature: T > 0, applied to both student and teacher logits in the KL term only.
        alpha: weight of the teacher term in [0, 1]; 0 is plain cross-entropy training.
        ignore_index: label value of padding.
        num_items_in_batch: normaliser N; the Trainer passes the number of target positions of the whole
            (gradient-accumulated, possibly multi-process) batch, so that accumulated gradients equal the gradient
            of one big batch. Defaults to the non-padding positions of this batch.
        teacher_topk: instead of ``teacher_logits``, the teacher's cached top-k distribution (see
            :mod:`hfqd.distill.teacher_cache`): token ids ``[..., k]``, their log-probabilities at ``temperature``
            ``[..., k]`` and the probability mass of all other tokens ``[...]``. The KL divergence is then taken
            over k + 1 buckets, the top-k tokens and "the rest": ``sum_i p_i log(p_i / q_i) + p_r log(p_r / q_r)``,
            where ``q_r`` is the student's mass outside the teacher's top k. This is a lower bound of the full KL
            (the rest is merged into one outcome) that ignores how the student spreads mass inside the rest; it is
            exact when the rest holds no mass (k = vocabulary size) and close when the teacher is confident.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"`alpha` must be in [0, 1], got {alpha}.")
    if temperature <= 0:
        raise ValueError(f"`temperature` must be > 0, got {temperature}.")
    vocab = student_logits.shape[-1]
    s = student_logits.reshape(-1, vocab).float()
    y = labels.reshape(-1)
    mask = y != ignore_index
    n = mask.sum() if num_items_in_batch is None else num_items_in_batch
    if torch.is_tensor(n):
        n = n.to(s.device).clamp(min=1)
    else:
        n = max(int(n), 1)
    log_q = F.log_softmax(s, dim=-1)  # one full-vocabulary pass, shared by CE and (at T = 1) the KD term
    ce = F.nll_loss(log_q, y, ignore_index=ignore_index, reduction="sum") / n
    if alpha > 0 and teacher_topk is not None:
        log_q_t = log_q[mask] if temperature == 1 else F.log_softmax(s[mask] / temperature, dim=-1)
        kd = _topk_kl(log_q_t, *(t.reshape(-1, *t.shape[labels.dim():])[mask] for t in teacher_topk))
        kd = kd * temperature**2 / n
    elif alpha > 0:
        if teacher_logits is None:
            raise ValueError("`teacher_logits` (or `teacher_topk`) is required when alpha > 0.")
        if teacher_logits.shape[-1] != vocab:
            raise ValueError(
                f"Teacher and student disagree on the output size ({teacher_logits.shape[-1]} vs {vocab}): "
                "token-level distillation needs the same vocabulary. Build the student with the teacher's tokenizer."
            )
        t = teacher_logits.reshape(-1, vocab).float()[mask]
        log_p_student = log_q[mask] if temperature == 1 else F.log_softmax(s[mask] / temperature, dim=-1)
        log_p_teacher = F.log_softmax(t / temperature, dim=-1)
        kl = (log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum()
        kd = kl * temperature**2 / n
    else:
        kd = torch.zeros((), device=s.device)
    loss = alpha * kd + (1.0 - alpha) * ce
    return DistillationLossOutput(loss=loss, kd=kd.detach(), ce=ce.detach())


def _topk_kl(log_q: torch.Tensor, ids: torch.Tensor, teacher_logprobs: torch.Tensor,
             rest_mass: torch.Tensor) -> torch.Tensor:
    """Summed KL(teacher || student) over the buckets {top-k tokens, rest}, for rows of ``[N, V]`` student
    log-probabilities (at the training temperature).

    The student's rest mass is one minus its mass on the teacher's top k, so nothing but the gather touches the
    full vocabulary: the cached loss costs about what cross-entropy costs. (That the cache's ids fit the student is
    checked once, when the trainer compares teacher and student outputs, not at every step.)
    """
    vocab = log_q.shape[-1]
    log_q_top = log_q.gather(-1, ids)
    top = (teacher_logprobs.exp() * (teacher_logprobs - log_q_top)).sum()
    if ids.shape[-1] >= vocab:
        return top  # k = vocabulary size: no rest, the full KL
    rest = rest_mass.clamp(min=0.0)
    log_q_rest = torch.log((1.0 - log_q_top.exp().sum(-1)).clamp(min=1e-12))
    # 0 * log 0 = 0: a rest without mass adds nothing.
    rest_term = torch.where(rest > 0, rest * (torch.log(rest.clamp(min=1e-30)) - log_q_rest), torch.zeros_like(rest))
    return top + rest_term.sum()
