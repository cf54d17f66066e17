"""Image classification data: the original idx files of (Fashion-)MNIST, Hub datasets, and train-time transforms."""

from __future__ import annotations

import gzip
import os
import struct

import numpy as np
import torch
from datasets import Dataset, DatasetDict, load_dataset

FASHION_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
_IDX_DTYPE = {0x08: np.uint8}


def read_idx(path: str) -> np.ndarray:
    """Read an idx file (gzip-compressed or raw): the format of the original MNIST and Fashion-MNIST releases.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not an idx file, an unsupported element type, or fewer bytes than its header announces.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Missing idx file {path}.")
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as err:
        raise ValueError(f"{path} is not a readable gzip file ({err}); download it again.") from err
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path} is not an idx file (bad magic number).")
    dtype, ndim = data[2], data[3]
    if dtype not in _IDX_DTYPE:
        raise ValueError(f"{path}: element type 0x{dtype:02x} is not supported (only unsigned bytes).")
    header = 4 + 4 * ndim
    shape = struct.unpack(f">{ndim}I", data[4:header])
    expected = int(np.prod(shape))
    if len(data) - header != expected:
        raise ValueError(f"{path} holds {len(data) - header} values but its header announces {expected}: truncated?")
    return np.frombuffer(data, dtype=_IDX_DTYPE[dtype], offset=header).reshape(shape)


def load_idx_dataset(data_dir: str, files: dict[str, tuple[str, str]] = FASHION_MNIST_FILES) -> DatasetDict:
    """Images and labels from idx files as a `DatasetDict` with columns `image` (H x W uint8) and `label`."""
    if not os.path.isdir(data_dir):
        raise FileNotFoundError(
            f"--data_dir {data_dir} is not a folder (relative paths start from the current directory). Point it at "
            "the folder holding the idx .gz files, or use a Hub dataset with --dataset."
        )
    splits = {}
    for split, (image_file, label_file) in files.items():
        images = read_idx(os.path.join(data_dir, image_file))
        labels = read_idx(os.path.join(data_dir, label_file))
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(
                f"{split}: {image_file} holds images of shape {images.shape} and {label_file} labels of shape "
                f"{labels.shape}; they must be N x H x W and N."
            )
        splits[split] = Dataset.from_dict({"image": list(images), "label": labels.astype(np.int64)})
    return DatasetDict(splits)


def load_image_dataset(dataset: str | None, data_dir: str | None, image_column: str | None = None) -> DatasetDict:
    """Local idx files (``data_dir``) or a Hub dataset (e.g. `zalando-datasets/fashion_mnist`, `uoft-cs/cifar10`).

    The result always has the columns `image` and `label`, and the splits `train` and `test`.
    """
    if data_dir is not None:
        return load_idx_dataset(data_dir)
    if dataset is None:
        raise ValueError("Give --data_dir (idx files) or --dataset (a Hub dataset).")
    raw = load_dataset(dataset)
    out = {}
    for split in ("train", "test"):
        if split not in raw:
            raise ValueError(f"{dataset} has no {split!r} split (it has {list(raw)}).")
        ds = raw[split]
        column = image_column or next((c for c in ("image", "img", "pixel_values") if c in ds.column_names), None)
        if column is None or "label" not in ds.column_names:
            raise ValueError(f"{dataset} needs an image column and a `label` column; it has {ds.column_names}.")
        if column != "image":
            ds = ds.rename_column(column, "image")
        out[split] = ds.select_columns(["image", "label"])
    return DatasetDict(out)


class ImageTransform:
    """Batch transform for `Dataset.set_transform`: images to normalised `pixel_values`, labels checked.

    Training adds the paper's CIFAR augmentation: a random crop after zero padding by ``pad`` pixels and a
    random horizontal flip (without torchvision: plain tensor operations).

    Args:
        size: expected (height, width); other sizes are an error rather than silently resized.
        channels: expected number of channels (1 for Fashion-MNIST, 3 for CIFAR).
        num_labels: labels must lie in [0, num_labels).
        mean / std: per-channel normalisation of [0, 1] pixels.
        train: apply augmentation.
        pad: padding of the random crop (0 disables it).
        flip: random horizontal flip.
    """

    def __init__(self, size: tuple[int, int], channels: int, num_labels: int, mean, std, train: bool = False,
                 pad: int = 0, flip: bool = False):
        self.size, self.channels, self.num_labels = tuple(size), channels, num_labels
        self.mean = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)
        self.train, self.pad, self.flip = train, pad, flip

    def _to_tensor(self, image) -> torch.Tensor:
        array = np.asarray(image, dtype=np.uint8)
        x = torch.from_numpy(array.copy()).float() / 255.0
        if x.dim() == 2:
            x = x.unsqueeze(0)
        elif x.dim() == 3 and x.shape[-1] in (1, 3, 4):
            x = x.permute(2, 0, 1)[: self.channels]
        if tuple(x.shape[-2:]) != self.size or x.shape[0] != self.channels:
            raise ValueError(
                f"Expected images of {self.channels} x {self.size[0]} x {self.size[1]}, got {tuple(x.shape)}. "
                "Use the image size the model was built for."
            )
        return x

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad:
            h, w = self.size
            padded = torch.nn.functional.pad(x, (self.pad,) * 4)
            top, left = (int(v) for v in torch.randint(0, 2 * self.pad + 1, (2,)))
            x = padded[:, top : top + h, left : left + w]
        if self.flip and bool(torch.rand(()) < 0.5):
            x = x.flip(-1)
        return x

    def __call__(self, batch: dict) -> dict:
        images = [self._to_tensor(img) for img in batch["image"]]
        if self.train:
            images = [self._augment(x) for x in images]
        labels = torch.as_tensor(batch["label"], dtype=torch.long)
        bad = labels[(labels < 0) | (labels >= self.num_labels)]
        if bad.numel():
            raise ValueError(f"Label {int(bad[0])} is outside [0, {self.num_labels}); check --num_labels.")
        pixels = (torch.stack(images) - self.mean) / self.std
        return {"pixel_values": pixels, "labels": labels}
