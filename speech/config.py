"""Typed configuration: the dataclasses Hydra composes into, registered in Hydra's ``ConfigStore``.

``conf/`` holds one YAML group per dataclass (``features``, ``model``, ``data``, ``augment``, ``optim``,
``trainer``); a recipe (``recipes/<name>/<name>.yaml``) picks one option of each and overrides values.
Because the schema is typed, a misspelt key (``model.hiden_size=64``) fails with Hydra's error.

``conf/`` and ``recipes/`` sit at the top of a checkout and ship inside the wheel as ``speech/conf`` and
``speech/recipes`` (``setup.py``); :func:`conf_dir` and :func:`recipes_dir` find whichever is there, and
:func:`find_recipe` turns ``recipe=NAME`` (or a folder, or a YAML file) into the recipe's YAML.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, List, Optional

from speech.augment import AugmentConfig
from speech.features import FeatureConfig
from speech.models import ModelConfig


@dataclass
class DataConfig:
    """Where the manifests are and how batches are made.

    ``root``: folder with ``train.jsonl``/``valid.jsonl``/``test.jsonl`` (written by ``speech prepare``).
    ``fold``: a sub-folder of ``root`` holding the manifests (e.g. ``fold_theo`` of a leave-one-speaker-out
    preparation). ``prepare``: arguments of ``speech prepare`` run once (``--out root`` is added) when ``root`` has no
    train manifest, so a recipe runs on a fresh machine. ``compose=digit_strings`` builds connected digit
    strings on the fly from single-digit clips (``train_size``/``eval_size`` strings per epoch/set).
    ``stream_windows``: share of a classifier's training clips turned into 1 s windows of a short stream of
    words (:mod:`speech.data.windows`: a command cut by the window's edge is ``partial_command``, ``unknown``
    or ``ignore``d), so the model learns what a live window holds.
    """

    root: str = "data"
    fold: Optional[str] = None
    prepare: Optional[str] = None
    commands: List[str] = field(default_factory=list)
    train_manifest: str = "train.jsonl"
    valid_manifest: str = "valid.jsonl"
    test_manifest: str = "test.jsonl"
    labels: Optional[List[str]] = None
    clip_seconds: Optional[float] = None
    batch_size: int = 32
    num_workers: int = 0
    cache_dir: Optional[str] = None
    max_items: int = 0  # >0: a seeded random slice of each manifest (smoke runs)
    compose: str = "none"
    train_size: int = 3000
    eval_size: int = 500
    min_digits: int = 2
    max_digits: int = 7
    extra_train_manifests: List[str] = field(default_factory=list)
    stream_windows: float = 0.0
    partial_command: str = "unknown"


@dataclass
class OptimConfig:
    """AdamW with linear warm-up then ``cosine`` decay, ``onecycle``, or ``constant``."""

    lr: float = 3e-3
    weight_decay: float = 1e-2
    betas: List[float] = field(default_factory=lambda: [0.9, 0.98])
    schedule: str = "cosine"
    warmup_fraction: float = 0.05
    min_lr_ratio: float = 0.02
    grad_clip: float = 5.0
    label_smoothing: float = 0.1


@dataclass
class TrainerConfig:
    """``device``: auto/cpu/cuda[:n]; ``precision``: auto (fp16 autocast on CUDA), 32, 16 or bf16.
    ``resume=true`` continues from ``checkpoints/last.pt`` in the run directory. ``init_from``: a model
    file whose weights of matching name and shape initialize the new model (e.g. a CTC model's encoder from
    a classifier). ``average_last``: the final model is the mean of the weights at the end of the last N
    epochs (checkpoint averaging) instead of the best epoch's; 0 keeps the best epoch.
    ``operating_point_far``: classifiers with ``_unknown_``/``_silence_``: save the threshold whose
    false-accept rate on the validation set's non-command clips is at most this (``speech.calibrate``);
    0: none (the verbs then default to no threshold).
    ``distill_from``: classifier files (or bundled names) with this run's labels and sample rate (a teacher
    with another front end computes its own features from the same augmented audio): their mean
    posterior on each augmented training batch is a soft target (knowledge distillation of an ensemble
    into one model); the loss is ``(1 - distill_weight) x cross-entropy + distill_weight x T^2 x
    KL(teachers || model)``, both at temperature ``T = distill_temperature``. Empty: no teachers.
    ``distill_clean_channel``: the teachers hear each clip without the narrower channels
    (``augment.band_limit_prob``, ``augment.telephone_prob``) and without the feature-space augmentation,
    while the model learns it as augmented: teachers on the clean channel for a student of the narrow one
    (teacher-student learning on parallel data, Li et al., 2014), so that what the student learns of the
    narrow channel is the teachers' answer on the clean one, not their confusions on the narrow one."""

    max_epochs: int = 20
    max_steps: int = 0
    device: str = "auto"
    precision: str = "auto"
    seed: int = 1234
    resume: bool = False
    init_from: Optional[str] = None
    early_stopping_patience: int = 0
    average_last: int = 0
    num_threads: int = 1
    stats_batches: int = 20
    progress: bool = True
    tensorboard: bool = True
    evaluate_test: bool = True
    operating_point_far: float = 0.0
    distill_from: List[str] = field(default_factory=list)
    distill_weight: float = 0.5
    distill_temperature: float = 1.0
    distill_clean_channel: bool = False


@dataclass
class TrainConfig:
    recipe: str = "custom"
    features: FeatureConfig = field(default_factory=FeatureConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)


def register_configs() -> None:
    """Register the schema so YAML configs are validated against it."""
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=TrainConfig)
    for group, node in (
        ("features", FeatureConfig), ("model", ModelConfig), ("data", DataConfig),
        ("augment", AugmentConfig), ("optim", OptimConfig), ("trainer", TrainerConfig),
    ):
        cs.store(group=group, name=f"{group}_schema", node=node)


def to_dataclass(cfg: Any) -> TrainConfig:
    """A composed DictConfig -> :class:`TrainConfig` of plain dataclasses (no Hydra objects)."""
    from omegaconf import OmegaConf

    obj = OmegaConf.to_object(cfg)
    if isinstance(obj, dict):  # composed from YAML only: build the dataclasses
        obj = TrainConfig(
            recipe=obj.get("recipe", "custom"), features=FeatureConfig(**obj["features"]), model=ModelConfig(**obj["model"]),
            data=DataConfig(**obj["data"]), augment=AugmentConfig(**obj["augment"]),
            optim=OptimConfig(**obj["optim"]), trainer=TrainerConfig(**obj["trainer"]),
        )
    return obj


# ----------------------------------------------------------------------------------- where configs are
PACKAGE_DIR = Path(__file__).resolve().parent


def checkout_root() -> Path | None:
    """The repository folder when ``speech`` runs from a checkout (editable install), else ``None``."""
    top = PACKAGE_DIR.parent
    return top if (top / "pyproject.toml").is_file() and (top / "conf").is_dir() else None


def conf_dir() -> Path:
    """``conf/`` of the checkout, or ``speech/conf`` inside an installed wheel."""
    top = checkout_root()
    return top / "conf" if top else PACKAGE_DIR / "conf"


def recipes_dir() -> Path:
    """``recipes/`` of the checkout, or ``speech/recipes`` inside an installed wheel."""
    top = checkout_root()
    return top / "recipes" if top else PACKAGE_DIR / "recipes"


def project_root() -> Path:
    """What recipes call ``${speech_root:}``: the checkout, or the current folder for a wheel (the shared
    data then comes from ``$SPEECH_DATA_DIR``)."""
    return checkout_root() or Path.cwd()


class RecipeError(ValueError):
    """``recipe=`` names no recipe; ``str(err)`` is one line."""


def list_recipes() -> list[tuple[str, Path, str]]:
    """``(name, yaml path, one-line description)`` of every recipe config (``recipes/*/*.yaml``; a recipe
    folder may hold several, e.g. ``commands`` and ``commands_ctc``), sorted by name. The description is the
    first sentence of the YAML's opening comment."""
    found = []
    root = recipes_dir()
    for path in sorted(root.glob("*/*.yaml")) if root.is_dir() else []:
        comment = []
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.startswith("# ") or line.startswith("#  "):  # the opening prose, not indented commands
                break
            comment.append(line[2:].strip())
        text = " ".join(comment)
        found.append((path.stem, path, text.split(". ")[0].rstrip(".") if text else ""))
    return sorted(found)


def find_recipe(recipe: str) -> Path:
    """``recipe=`` -> the recipe's YAML: a name from :func:`list_recipes`, a folder holding ``<folder>.yaml``
    (or exactly one YAML), or a YAML file. Raises :class:`RecipeError`."""
    path = Path(os.path.expanduser(recipe))
    if path.is_file() and path.suffix in (".yaml", ".yml"):
        return path.resolve()
    if path.is_dir():
        own = path / f"{path.resolve().name}.yaml"
        yamls = sorted(path.glob("*.yaml"))
        if own.is_file() or len(yamls) == 1:
            return (own if own.is_file() else yamls[0]).resolve()
        raise RecipeError(f"{recipe}: a recipe folder holds {path.resolve().name}.yaml (found {len(yamls)} YAML files)")
    named = [p for name, p, _ in list_recipes() if name == recipe]
    if named:
        return named[0].resolve()
    known = ", ".join(name for name, _, _ in list_recipes())
    raise RecipeError(f"unknown recipe {recipe!r} (recipes: {known}; or give a recipe folder or YAML file)")
