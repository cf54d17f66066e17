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
    """Inference throughput of the model alone: batches are decoded and transformed before the clock starts."""
    model.eval()
    device = next(model.parameters()).device
    loader = iter(DataLoader(dataset, batch_size=batch_size))
    inputs = []
    for _ in range(batches + 1):
        batch = next(loader, None)
        if batch is None:
            break
        inputs.append(batch["pixel_values"].to(device))
    if len(inputs) < 2:
        raise ValueError("Not enough evaluation images to time two batches.")
    model(pixel_values=inputs[0])  # warm-up, not timed
    start = time.perf_counter()
    for x in inputs[1:]:
        model(pixel_values=x)
    elapsed = time.perf_counter() - start
    return sum(len(x) for x in inputs[1:]) / elapsed
