import gzip
import importlib.util
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForImageClassification

from hfqd import DistillationArguments, QuantizedDistillationTrainer, save_packed
from hfqd.data.images import ImageTransform, load_idx_dataset, read_idx
from hfqd.distill import distillation_loss, make_resnet
from hfqd.quant import is_quantized, quantized_parameters

ROOT = Path(__file__).parents[1]


def _write_idx(path, array):
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def idx_dir(tmp_path):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 64), ("t10k", 32)):
        labels = rng.integers(0, 10, n)
        # Class-dependent brightness, so that a small network can learn something in a few steps.
        images = (rng.random((n, 28, 28)) * 80 + labels[:, None, None] * 17).clip(0, 255)
        _write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", images)
        _write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return tmp_path


def test_read_idx_and_dataset(idx_dir):
    images = read_idx(str(idx_dir / "train-images-idx3-ubyte.gz"))
    assert images.shape == (64, 28, 28) and images.dtype == np.uint8
    ds = load_idx_dataset(str(idx_dir))
    assert len(ds["train"]) == 64 and len(ds["test"]) == 32
    assert ds["train"][0]["label"] == int(read_idx(str(idx_dir / "train-labels-idx1-ubyte.gz"))[0])


def test_idx_errors(idx_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="Missing idx file"):
        read_idx(str(tmp_path / "nope.gz"))
    truncated = tmp_path / "short.gz"
    data = gzip.open(idx_dir / "t10k-images-idx3-ubyte.gz").read()[:-10]
    with gzip.open(truncated, "wb") as f:
        f.write(data)
    with pytest.raises(ValueError, match="truncated"):
        read_idx(str(truncated))
    corrupt = tmp_path / "corrupt.gz"
    corrupt.write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match="gzip"):
        read_idx(str(corrupt))
    (idx_dir / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError):
        load_idx_dataset(str(idx_dir))


def test_transform_checks_size_and_labels():
    transform = ImageTransform((28, 28), 1, 10, [0.5], [0.5], train=True, pad=2, flip=True)
    out = transform({"image": [np.zeros((28, 28), np.uint8)] * 3, "label": [0, 1, 9]})
    assert out["pixel_values"].shape == (3, 1, 28, 28) and out["labels"].tolist() == [0, 1, 9]
    with pytest.raises(ValueError, match="Expected images of 1 x 28 x 28"):
        transform({"image": [np.zeros((32, 32), np.uint8)], "label": [0]})
    with pytest.raises(ValueError, match="outside"):
        transform({"image": [np.zeros((28, 28), np.uint8)], "label": [10]})


def test_classifier_loss_is_batchmean_kd_plus_ce():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(4, 10, generator=g), torch.randn(4, 10, generator=g)
    y = torch.tensor([1, 2, 3, 4])
    T, alpha = 2.0, 0.7
    kl = (torch.softmax(t / T, -1) * (torch.log_softmax(t / T, -1) - torch.log_softmax(s / T, -1))).sum() / 4
    ce = torch.nn.functional.cross_entropy(s, y)
    expected = alpha * T * T * kl + (1 - alpha) * ce
    torch.testing.assert_close(distillation_loss(s, t, y, T, alpha).loss, expected)


def _datasets(idx_dir):
    ds = load_idx_dataset(str(idx_dir))
    for split, train in (("train", True), ("test", False)):
        ds[split].set_transform(ImageTransform((28, 28), 1, 10, [0.3], [0.3], train=train, pad=2))
    return ds


def test_qd_on_a_tiny_resnet(idx_dir, tmp_path):
    ds = _datasets(idx_dir)
    teacher = make_resnet(10, 1, 8, (8, 16), (1, 1), seed=1)
    student = make_resnet(10, 1, 4, (4, 8), (1, 1), seed=2)
    args = DistillationArguments(output_dir=str(tmp_path / "run"), max_steps=30, learning_rate=5e-3, bits=4,
                                 bucket_size=64, alpha=0.7, temperature=2.0, report_to="none", use_cpu=True,
                                 per_device_train_batch_size=16, logging_steps=1, save_strategy="no",
                                 disable_tqdm=True, remove_unused_columns=False)
    trainer = QuantizedDistillationTrainer(model=student, teacher_model=teacher, args=args, train_dataset=ds["train"])
    bn = student.resnet.embedder.embedder.normalization
    assert is_quantized(student.resnet.embedder.embedder.convolution) and not is_quantized(bn)
    running_mean = bn.running_mean.clone()
    names = {n for e in quantized_parameters(student) for n in e.module_names}
    assert not any("normalization" in n for n in names)
    trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5
    assert not torch.equal(bn.running_mean, running_mean)  # BN statistics follow the quantized forward passes
    assert bn.running_mean.dtype == torch.float32
    # Packed export loads through the image-classification auto class, bit-exact.
    save_packed(student, str(tmp_path / "packed"))
    loaded = AutoModelForImageClassification.from_pretrained(str(tmp_path / "packed")).eval()
    student.eval()
    x = ds["test"][:4]["pixel_values"]
    with torch.no_grad():
        assert torch.equal(student(pixel_values=x).logits, loaded(pixel_values=x).logits)


def test_vision_recipe_on_tiny_data(idx_dir, tmp_path):
    spec = importlib.util.spec_from_file_location("fashion_mnist", ROOT / "recipes" / "fashion_mnist.py")
    recipe = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = recipe
    spec.loader.exec_module(recipe)
    from hfqd.cli import parse_recipe_args

    argv = ["--preset", "demo", "--data_dir", str(idx_dir), "--output_dir", str(tmp_path / "out"),
            "--teacher_epochs", "1", "--num_train_epochs", "1", "--teacher_hidden_sizes", "8", "16",
            "--teacher_depths", "1", "1", "--teacher_embedding_size", "8", "--methods", "kd", "pm4", "qd2", "dq2",
            "--eval_batch_size", "16", "--logging_steps", "2"]
    types = (recipe.ModelArguments, recipe.DataArguments, recipe.RecipeArguments, recipe.DistillationArguments)
    rows = recipe.main(*parse_recipe_args(types, recipe.CONFIG_DIR, argv))
    assert [r.method for r in rows] == ["teacher", "kd", "pm4", "qd2", "dq2"]
    assert all(0 <= r.metrics["accuracy"] <= 100 and r.metrics["images/s"] > 0 for r in rows)
    assert (tmp_path / "out" / "qd2" / "README.md").is_file()
    loaded = AutoModelForImageClassification.from_pretrained(str(tmp_path / "out" / "qd2"))
    assert loaded.config.quantization_config.bits == 2
