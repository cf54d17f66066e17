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
from hfqd.eval.vision import accuracy, images_per_second
from hfqd.runner.job import JobArguments, Task, plan_methods, run_job, train_teacher
from hfqd.utils import command_line, end_processes, ensure_available, git_commit, run_header

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
class RecipeArguments(JobArguments):
    methods: list[str] | None = field(
        default_factory=lambda: ["student", "kd", "pm4", "pm2", "qd4", "qd2", "dq2"],
        metadata={"help": "Rows: student, kd, pm<b>, qat<b>, qd<b>, dq<b>, qddq<b>."},
    )
    eval_batch_size: int = field(default=256, metadata={"help": "Images per batch when scoring."})


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
    specs = plan_methods(recipe, args, has_teacher=True)
    args = dataclasses.replace(args, remove_unused_columns=False)  # the transform needs the raw `image` column
    train, test = load_splits(data_args, args.seed)

    def evaluate(model) -> dict[str, float]:
        model = model.to(args.device)
        return {"accuracy": 100 * accuracy(model, test, recipe.eval_batch_size),
                "images/s": images_per_second(model, test, recipe.eval_batch_size)}

    def make_student():
        if model_args.student:
            return AutoModelForImageClassification.from_pretrained(model_args.student)
        return make_resnet(data_args.num_labels, data_args.channels, model_args.student_embedding_size,
                           tuple(model_args.student_hidden_sizes), tuple(model_args.student_depths), args.seed)

    header = run_header(command_line("recipes/fashion_mnist.py"), commit, **{
        "data": f"{data_args.data_dir or data_args.dataset}: {len(train)} training / {len(test)} test images",
        "metrics": "top-1 accuracy (%) on the test split; images/s = CPU inference throughput at batch "
                   f"{recipe.eval_batch_size}" if args.device.type == "cpu" else "top-1 accuracy (%)",
        "loss": f"alpha={args.alpha} * T^2 * KL (batchmean) + (1 - alpha) * CE, T={args.temperature}",
    })
    trained_here = model_args.teacher == "train"
    task = Task("image-classification", train, make_student, evaluate, ["accuracy", "images/s"],
                base_model="a ResNet teacher trained by this recipe" if trained_here else model_args.teacher,
                datasets=[data_args.data_dir or data_args.dataset], note=header["data"],
                parent_model=model_args.student)
    teacher_seconds = None
    if trained_here:
        teacher = make_resnet(data_args.num_labels, data_args.channels, model_args.teacher_embedding_size,
                              tuple(model_args.teacher_hidden_sizes), tuple(model_args.teacher_depths), args.seed)
        teacher, teacher_seconds = train_teacher(teacher, task, args, recipe)
    else:
        ensure_available(model_args.teacher, "teacher model", OFFLINE_HINT)
        teacher = AutoModelForImageClassification.from_pretrained(model_args.teacher).eval()
    return run_job(task, teacher, specs, recipe, args, header, teacher_seconds)


if __name__ == "__main__":
    main(*parse_recipe_args((ModelArguments, DataArguments, RecipeArguments, DistillationArguments), CONFIG_DIR))
    end_processes()
