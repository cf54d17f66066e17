"""Image classification: accuracy and CPU throughput."""

from __future__ import annotations

import time

import torch
from torch import nn
from torch.utils.data import DataLoader


@torch.no_grad()
def accuracy(model: nn.Module, dataset, batch_size: int = 256) -> float:
    """Top-1 accuracy on a dataset whose items carry `pixel_values` and `labels` (e.g. via `ImageTransform`)."""
    model.eval()
    device = next(model.parameters()).device
    correct = total = 0
    for batch in DataLoader(dataset, batch_size=batch_size):
        logits = model(pixel_values=batch["pixel_values"].to(device)).logits
        correct += int((logits.argmax(-1).cpu() == batch["labels"]).sum())
        total += len(batch["labels"])
    if total == 0:
        raise ValueError("The evaluation set is empty.")
    return correct / total


@torch.no_grad()
def images_per_second(model: nn.Module, dataset, batch_size: int = 256, batches: int = 10) -> float:
    """Inference throughput over up to ``batches`` batches (one warm-up batch not timed)."""
    model.eval()
    device = next(model.parameters()).device
    loader = iter(DataLoader(dataset, batch_size=batch_size))
    model(pixel_values=next(loader)["pixel_values"].to(device))
    count, start = 0, time.perf_counter()
    for _ in range(batches):
        batch = next(loader, None)
        if batch is None:
            break
        model(pixel_values=batch["pixel_values"].to(device))
        count += len(batch["pixel_values"])
    elapsed = time.perf_counter() - start
    return count / elapsed if count else float("nan")
