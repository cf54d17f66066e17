"""Quantized distillation of an image classifier (Fashion-MNIST from the original idx files, or a Hub dataset).

Offline demo (a subset, small ResNets trained here, about 10 minutes on 2 CPU cores):

    accelerate launch recipes/fashion_mnist.py --preset demo

Full Fashion-MNIST (GPU recommended), or CIFAR-10 from the Hub:

    accelerate launch recipes/fashion_mnist.py --preset full
    accelerate launch recipes/fashion_mnist.py --dataset uoft-cs/cifar10 --image_size 32 32 --channels 3 \\
        --mean 0.4914 0.4822 0.4465 --std 0.2470 0.2435 0.2616 --pad 4 --output_dir runs/cifar10
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass, field

from transformers import AutoModelForImageClassification, set_seed

from hfqd.cli import parse_recipe_args
from hfqd.data.images import ImageTransform, load_image_dataset
from hfqd.distill import DistillationArguments, make_resnet
from hfqd.eval.report import ResultRow, write_results
from hfqd.eval.vision import accuracy, images_per_second
from hfqd.hub.card import write_row_cards
from hfqd.runner.methods import order_methods, run_methods, save_model_files, train_model
from hfqd.quant import model_size
from hfqd.utils import command_line, ensure_available, git_commit, run_header

logger = logging.getLogger("hfqd.recipes.fashion_mnist")
CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs", "fashion_mnist")
OFFLINE_HINT = "Offline, use the idx files: `--data_dir ../shared/data/fashion-mnist` (or `--preset demo`)."


@dataclass
class ModelArguments:
    teacher: str = field(default="train", metadata={"help": "Teacher folder / Hub id, or 'train' to train one here."})
    student: str | None = field(default=None, metadata={"help": "Student to start from (folder or Hub id)."})
    teacher_embedding_size: int = field(default=64, metadata={"help": "Stem width of a teacher trained here."})
    teacher_hidden_sizes: list[int] = field(default_factory=lambda: [64, 128, 256], metadata={"help": "Stage widths."})
    teacher_depths: list[int] = field(default_factory=lambda: [2, 2, 2], metadata={"help": "Blocks per stage."})
    teacher_epochs: float = field(default=10.0, metadata={"help": "Epochs of a teacher trained here."})
    teacher_learning_rate: float = field(default=2e-3, metadata={"help": "Learning rate of a teacher trained here."})
    student_embedding_size: int = field(default=16, metadata={"help": "Stem width of the student."})
    student_hidden_sizes: list[int] = field(default_factory=lambda: [16, 32], metadata={"help": "Student stage widths."})
    student_depths: list[int] = field(default_factory=lambda: [1, 1], metadata={"help": "Student blocks per stage."})


@dataclass
class DataArguments:
    dataset: str | None = field(default="zalando-datasets/fashion_mnist", metadata={"help": "Hub dataset."})
    data_dir: str | None = field(default=None, metadata={"help": "Folder of the original idx .gz files."})
    image_size: list[int] = field(default_factory=lambda: [28, 28], metadata={"help": "Height and width."})
    channels: int = field(default=1, metadata={"help": "Image channels."})
    num_labels: int = field(default=10, metadata={"help": "Number of classes."})
    mean: list[float] = field(default_factory=lambda: [0.2860], metadata={"help": "Per-channel pixel mean."})
    std: list[float] = field(default_factory=lambda: [0.3530], metadata={"help": "Per-channel pixel std."})
    pad: int = field(default=2, metadata={"help": "Zero padding of the training random crop (0: no crop)."})
    flip: bool = field(default=True, metadata={"help": "Random horizontal flips in training."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Use only this many training images."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Score only this many test images."})


@dataclass
class RecipeArguments:
    methods: list[str] = field(
        default_factory=lambda: ["student", "kd", "pm4", "pm2", "qd4", "qd2", "dq2"],
        metadata={"help": "Rows: student, kd, pm<b>, qat<b>, qd<b>, dq<b>, qddq<b>."},
    )
    eval_batch_size: int = field(default=256, metadata={"help": "Images per batch when scoring."})
    dq_teacher: str = field(
        default="self",
        metadata={"help": "Teacher of dq<b> rows: self (the full-precision kd student, as the paper) or teacher."},
    )
    save_models: bool = field(default=True, metadata={"help": "Save teacher and students (packed when quantized)."})


def load_splits(data_args: DataArguments, seed: int):
    """Train/test datasets with `pixel_values` and `labels` produced on the fly (augmented in training)."""
    if data_args.data_dir is None:
        ensure_available(data_args.dataset, "dataset", OFFLINE_HINT)
    raw = load_image_dataset(data_args.dataset, data_args.data_dir)
    train, test = raw["train"].shuffle(seed=seed), raw["test"]
    if data_args.max_train_samples:
        train = train.select(range(min(data_args.max_train_samples, len(train))))
    if data_args.max_eval_samples:
        test = test.select(range(min(data_args.max_eval_samples, len(test))))
    common = dict(size=tuple(data_args.image_size), channels=data_args.channels, num_labels=data_args.num_labels,
                  mean=data_args.mean, std=data_args.std)
    train.set_transform(ImageTransform(**common, train=True, pad=data_args.pad, flip=data_args.flip))
    test.set_transform(ImageTransform(**common))
    return train, test


def main(model_args: ModelArguments, data_args: DataArguments, recipe: RecipeArguments, args: DistillationArguments):
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    set_seed(args.seed)
    commit = git_commit(os.path.dirname(os.path.abspath(__file__)))
    specs = order_methods(recipe.methods, args.alpha)
    args = dataclasses.replace(args, remove_unused_columns=False)  # the transform needs the raw `image` column
    train, test = load_splits(data_args, args.seed)

    def evaluate(model) -> dict[str, float]:
        model = model.to(args.device)
        return {"accuracy": 100 * accuracy(model, test, recipe.eval_batch_size),
                "images/s": images_per_second(model, test, recipe.eval_batch_size)}

    # ---- teacher ----
    rows, teacher_seconds = [], None
    if model_args.teacher == "train":
        teacher = make_resnet(data_args.num_labels, data_args.channels, model_args.teacher_embedding_size,
                              tuple(model_args.teacher_hidden_sizes), tuple(model_args.teacher_depths), args.seed)
        teacher_args = dataclasses.replace(
            args, output_dir=os.path.join(args.output_dir, "teacher-run"), bits=None, alpha=0.0,
            distillation_mode="none", num_train_epochs=model_args.teacher_epochs, max_steps=-1,
            learning_rate=model_args.teacher_learning_rate, push_to_hub=False,
        )
        teacher, teacher_seconds = train_model(teacher, None, None, train, teacher_args)
    else:
        ensure_available(model_args.teacher, "teacher model", OFFLINE_HINT)
        teacher = AutoModelForImageClassification.from_pretrained(model_args.teacher)
    teacher.eval()
    teacher_size = model_size(teacher)
    if args.should_save:
        file_mb = save_model_files(teacher, os.path.join(args.output_dir, "teacher")) if recipe.save_models else None
        rows.append(ResultRow(
            method="teacher", description="teacher, full precision", bits=None, params=teacher_size.params,
            size_mb=teacher_size.megabytes, compression=1.0, metrics=evaluate(teacher),
            train_seconds=teacher_seconds, file_mb=file_mb,
        ))

    # ---- students ----
    def make_student():
        if model_args.student:
            return AutoModelForImageClassification.from_pretrained(model_args.student)
        return make_resnet(data_args.num_labels, data_args.channels, model_args.student_embedding_size,
                           tuple(model_args.student_hidden_sizes), tuple(model_args.student_depths), args.seed)

    rows += run_methods(
        specs, make_student, teacher, None, train, args, evaluate, teacher_size.fp32_bits,
        is_main_process=args.should_save, display_order=recipe.methods,
        save_dir=args.output_dir if recipe.save_models else None, dq_teacher=recipe.dq_teacher,
    )

    # ---- report ----
    if args.should_save:
        header = run_header(
            command_line("recipes/fashion_mnist.py"), commit, **{
            "data": f"{data_args.data_dir or data_args.dataset}: {len(train)} training / {len(test)} test images",
            "metrics": "top-1 accuracy (%) on the test split; images/s = CPU inference throughput at batch "
                       f"{recipe.eval_batch_size}" if args.device.type == "cpu" else "top-1 accuracy (%)",
            "loss": f"alpha={args.alpha} * T^2 * KL (batchmean) + (1 - alpha) * CE, T={args.temperature}",
        })
        metrics = ["accuracy", "images/s"]
        print("\n" + write_results(os.path.join(args.output_dir, "results"), rows, metrics, header))
        if recipe.save_models:
            write_row_cards(
                rows, args.output_dir, base_model=model_args.teacher if model_args.teacher != "train"
                else "a ResNet teacher trained by this recipe", datasets=[data_args.data_dir or data_args.dataset],
                command=header["command"], task="image-classification", metric_names=metrics,
                note=header["data"], hub_model_id=args.hub_model_id,
            )
    return rows


if __name__ == "__main__":
    main(*parse_recipe_args((ModelArguments, DataArguments, RecipeArguments, DistillationArguments), CONFIG_DIR))
