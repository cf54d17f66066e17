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
    ce = F.cross_entropy(s, y, ignore_index=ignore_index, reduction="sum") / n
    if alpha > 0:
        if teacher_logits is None:
            raise ValueError("`teacher_logits` is required when alpha > 0.")
        if teacher_logits.shape[-1] != vocab:
            raise ValueError(
                f"Teacher and student disagree on the output size ({teacher_logits.shape[-1]} vs {vocab}): "
                "token-level distillation needs the same vocabulary. Build the student with the teacher's tokenizer."
            )
        t = teacher_logits.reshape(-1, vocab).float()[mask]
        log_p_student = F.log_softmax(s[mask] / temperature, dim=-1)
        log_p_teacher = F.log_softmax(t / temperature, dim=-1)
        kl = (log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum()
        kd = kl * temperature**2 / n
    else:
        kd = torch.zeros((), device=s.device)
    loss = alpha * kd + (1.0 - alpha) * ce
    return DistillationLossOutput(loss=loss, kd=kd.detach(), ce=ce.detach())
