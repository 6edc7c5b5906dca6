"""The config schema: validated, frozen dataclasses and their value checks (imports no registry).

Every field carries its help text in ``metadata["help"]``; a ``metadata["min"]`` bound is checked.
Unknown keys, wrong types and out-of-range values fail early with the file and key named.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import re
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any, Literal, Union

import yaml

from aebench.errors import UserError

MAX_IMAGE_SIZE = 1024  # 3 x 1024^2 uint8 = 3 MB an image: far past every dataset here
INT64 = (-(2**63), 2**63 - 1)  # every integer of a config lies here (torch, numpy and JSON readers hold int64)
MAX_COUNT = 10**6  # epochs, batch sizes, latent sizes, intervals: far past any run, far below an overflow
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")  # experiment, dataset and technique names: folder names


class ConfigError(UserError):
    """A config value is missing, unknown, mistyped or out of range."""


OWN_VALUE = object()  # ``hash_as`` left unset: the hash sees the field's own value


def opt(
    default: Any,
    help: str,
    min: float | None = None,
    max: float | None = None,
    added: bool = False,
    hash_as: Any = OWN_VALUE,
) -> Any:
    """A dataclass field with a one-line help text and optional inclusive bounds.

    ``added=True`` marks a field added after results were first written: at its default it stays out of the
    config hash, so adding it leaves every existing results folder resumable (see ``hashed``).
    ``hash_as`` marks an execution choice that leaves results equal within the precision's tolerance (how the
    step runs, not what it computes): the hash always sees ``hash_as``, so changing it neither splits nor reruns
    a cell; the row records the choice.
    """
    meta = {"help": help, "min": min, "max": max, "added": added, "hash_as": hash_as}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class CycleConfig:
    """One one-cycle run of ``train.cycles``: its epochs and peak LR."""

    epochs: int = opt(1, "epochs of this cycle", min=1, max=MAX_COUNT)
    lr: Union[float, None] = opt(None, "peak LR of this cycle; null = train.lr (the technique's)", min=1e-12)


@dataclass(frozen=True)
class TrainConfig:
    """How a technique is trained (shared by every technique)."""

    epochs: int = opt(15, "total training epochs, split across a technique's phases", min=1, max=MAX_COUNT)
    batch_size: int = opt(128, "images per optimisation step", min=1, max=MAX_COUNT)
    optimizer: Literal["adam", "adamw", "sgd"] = opt("adam", "optimizer (adamw: decoupled weight decay)")
    betas: tuple[float, float] = opt(
        (0.9, 0.999), "adam/adamw betas (beta1 is the momentum a one-cycle schedule moves)", added=True
    )
    lr: Union[float, Literal["auto"]] = opt(1e-3, "peak learning rate, or 'auto' for an LR range test", min=1e-12)
    weight_decay: float = opt(0.0, "weight decay on every parameter, BatchNorm and biases included", min=0)
    momentum: float = opt(0.9, "SGD momentum", min=0)
    schedule: Literal["one_cycle", "step", "multistep", "constant"] = opt(
        "one_cycle", "learning-rate schedule per phase"
    )
    cycles: tuple[CycleConfig, ...] = opt(
        (),
        "one-cycle runs back to back, e.g. [{epochs: 5, lr: 3.0e-3}, {epochs: 10}] (fastai's fit_one_cycle twice): "
        "their epochs sum to train.epochs, the optimizer state is kept across them, and a technique's phases "
        "(image size, frozen encoder) follow them; empty = one cycle per phase",
        added=True,
    )
    clamp: bool = opt(
        False, "clamp the output to [0, 1] in the training loss too (evaluation always clamps)", added=True
    )
    drop_last: bool = opt(False, "drop the last partial training batch of each epoch (fastai's)", added=True)
    step_size: int = opt(1, "step schedule: step_units between LR drops", min=1, max=2**31)
    milestones: tuple[int, ...] = opt((), "multistep schedule: step_units after which the LR is multiplied by gamma")
    step_unit: Literal["epoch", "batch"] = opt(
        "epoch", "what step_size and milestones count: epochs or optimizer steps"
    )
    gamma: float = opt(0.1, "step / multistep schedule: LR multiplier at each drop", min=0)
    loss: Literal["mse", "l1", "bce"] = opt("mse", "pixel loss between reconstruction and clean target")
    validation_fraction: float = opt(
        0.0, "fraction of the training split held out; >0 keeps the best-validation weights", min=0, max=0.9
    )
    snapshot_every: int = opt(
        0,
        "save a reconstruction grid of 12 fixed test images every N epochs, plus a GIF (0 = off)",
        min=0,
        max=MAX_COUNT,
    )
    compile: Union[bool, Literal["auto"]] = opt(
        "auto",
        "torch.compile the model for the training steps: true, false, or auto = where a probe after the first "
        "epoch finds it faster on this device and the rest of the cell repays the compile",
        hash_as=False,  # an execution choice: the hash of every cell stays what it was when this was a bool
    )
    precision: Literal["auto", "fp32", "bf16", "fp16"] = opt(
        "auto", "autocast dtype for forward passes; auto = bf16 where the device does it natively, else fp32"
    )
    budget_seconds: Union[float, None] = opt(
        None, "stop training after this many training seconds (evaluation excluded; epochs stay the cap)", min=1e-3
    )

    def __post_init__(self) -> None:
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ConfigError(f"train.betas must be two numbers in [0, 1) (got {list(self.betas)})")
        if not self.cycles:
            return
        total = sum(cycle.epochs for cycle in self.cycles)
        if total != self.epochs:
            raise ConfigError(
                f"train.cycles: their epochs sum to {total}, but train.epochs is {self.epochs} (set both)"
            )
        if self.schedule != "one_cycle":
            raise ConfigError(f"train.cycles needs train.schedule: one_cycle (got {self.schedule!r})")


@dataclass(frozen=True)
class CorruptionConfig:
    """Input corruption for denoising (target stays clean)."""

    kind: Literal["none", "gaussian", "mask", "salt_pepper"] = opt("none", "corruption applied to the input")
    sigma: float = opt(0.1, "gaussian: noise standard deviation (pixels in [0,1])", min=0)
    p: float = opt(0.25, "mask / salt_pepper: fraction of pixels affected", min=0, max=1)
    clip: bool = opt(True, "clamp the corrupted input to [0,1]")


@dataclass(frozen=True)
class DataConfig:
    """Which pixels a technique sees."""

    image_size: Union[int, None] = opt(
        None, "resize to this many pixels a side (null = native; SSIM needs >= 6)", min=6, max=MAX_IMAGE_SIZE
    )
    channels: Union[Literal[1, 3], None] = opt(None, "1 or 3; grey images are repeated to 3 (null = native)")
    limit_train: Union[int, None] = opt(None, "a fixed, seeded subset of the training split", min=1)
    limit_test: Union[int, None] = opt(None, "a fixed, seeded subset of the test split", min=1)
    normalize: Literal["dataset", "imagenet", "none"] = opt("dataset", "input normalisation (targets stay in [0,1])")
    augment: bool = opt(False, "augmentation applied to input and target alike (augment_style says which)")
    augment_style: Literal["affine", "dihedral"] = opt(
        "affine",
        "affine: left-right flip, rotation, zoom (bilinear resampling) and lighting; dihedral: fastai v1's "
        "get_transforms(flip_vert=True, p_affine=0), the study's: one of the 8 dihedral orientations, brightness "
        "and contrast in logit space (p 0.75 each)",
        added=True,
    )
    resize: Literal["aebench", "fastai"] = opt(
        "aebench",
        "how image_size is reached: aebench: antialiased bilinear on pixel centres; fastai: fastai v1.0.60's "
        "(the study's): bilinear grid_sample of a linspace(-1, 1) grid, align_corners=False, reflection (a 28 px "
        "image is drawn 31/32 as large at 32 px)",
        added=True,
    )
    binarize: bool = opt(False, "threshold pixels at 0.5 (classic setting for BCE)")
    corruption: CorruptionConfig = opt(CorruptionConfig(), "input corruption for denoising")


@dataclass(frozen=True)
class ModelConfig:
    """Architecture settings shared by techniques."""

    latent: int = opt(1000, "latent size (the study: 1000); PCA uses as many components", min=1, max=MAX_COUNT)
    layers: Literal["aebench", "study"] = opt(
        "aebench",
        "the conv layers: study = the study's modules (BN+ReLU after the encoder's second pool, decoder convs with "
        "bias, BN after each pixel-shuffle block, progressive resizing's decoder at the phase's size); aebench = "
        "without them (its first rows)",
        added=True,
    )


@dataclass(frozen=True)
class ClassifierConfig:
    """The downstream classifier that scores reconstructions."""

    model: Literal["cnn", "resnet34"] = opt(
        "cnn",
        "cnn: compact CNN trained on the clean training images; resnet34: ImageNet ResNet-34 fine-tuned on them (the study)",
    )
    weights: Union[str, None] = opt(
        None, "resnet34: local ImageNet state_dict (.pth/.safetensors); null = timm's hub copy (cells skipped offline)"
    )
    epochs: int = opt(10, "classifier training epochs", min=1, max=MAX_COUNT)
    batch_size: int = opt(128, "classifier batch size", min=1, max=MAX_COUNT)
    lr: float = opt(2e-3, "classifier peak learning rate (one-cycle Adam)", min=0)
    precision: Literal["auto", "fp32", "bf16", "fp16"] = opt("auto", "autocast dtype while training the classifier")


CLASSIFIER_BODIES = {"resnet34": "resnet34.tv_in1k"}  # the timm body (and pretrained weights) of each model


SECTIONS: dict[str, type] = {
    "train": TrainConfig,
    "data": DataConfig,
    "model": ModelConfig,
    "classifier": ClassifierConfig,
}


@dataclass(frozen=True)
class CellConfig:
    """Everything one (dataset, technique, seed) cell needs; derived from the experiment. ``axes``: the cell's
    point of the experiment's sweep, each axis key with its resolved value (``{"model.latent": 32}``; empty without a
    sweep, so an experiment without one keeps its hashes)."""

    experiment: str
    dataset: str
    technique: str
    seed: int
    train: TrainConfig
    data: DataConfig
    model: ModelConfig
    classifier: ClassifierConfig
    params: Any
    axes: dict[str, Any] = field(default_factory=dict, hash=False, metadata={"added": True})  # its sweep point
    dataset_source: Union[str, None] = field(default=None, metadata={"added": True})  # an image folder's folder:PATH

    def to_dict(self) -> dict[str, Any]:
        return to_plain(self)

    @property
    def source(self) -> str:
        """What the dataset registry loads the cell's images by: an image folder's ``folder:PATH``, else the
        dataset's name."""
        return self.dataset_source or self.dataset

    @property
    def config_hash(self) -> str:
        """Stable short hash of the resolved cell config (fields marked ``added`` left out at their default)."""
        return digest(hashed(self))

    @property
    def recipe_hash(self) -> str:
        """``config_hash`` with the seed left out: equal for every seed of one config, so the report can tell
        another recipe (a changed option) from another seed."""
        return digest({name: value for name, value in hashed(self).items() if name != "seed"})


# --------------------------------------------------------------------------- validation


def build(cls: type, raw: Any, where: str, source: str, also_known: tuple[str, ...] = ()) -> Any:
    """Build dataclass ``cls`` from a mapping, rejecting unknown keys (the error lists ``also_known``, keys valid
    beside the fields at ``where``, then the fields) and bad values."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: '{where}' must be a mapping, got {type(raw).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        key = f"{where}.{unknown[0]}" if where else unknown[0]
        raise ConfigError(f"{source}: unknown key '{key}' (known: {', '.join([*also_known, *fields]) or 'none'})")
    hints = typing.get_type_hints(cls)
    values = {}
    for name, value in raw.items():
        key = f"{where}.{name}" if where else name
        values[name] = check_value(hints[name], value, key, source)
        low, high = fields[name].metadata.get("min"), fields[name].metadata.get("max")
        if isinstance(values[name], (int, float)) and not isinstance(values[name], bool):
            if low is not None and values[name] < low:
                raise ConfigError(f"{source}: '{key}' must be >= {low} (got {value!r})")
            if high is not None and values[name] > high:
                raise ConfigError(f"{source}: '{key}' must be <= {high} (got {value!r})")
    return cls(**values)


EXPONENT_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def check_value(hint: Any, value: Any, key: str, source: str) -> Any:
    """Coerce/validate one value against a type hint; raise ConfigError naming the key."""
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return value if isinstance(value, hint) else build(hint, value, key, source)
    if origin in (Union, types.UnionType):
        for option in typing.get_args(hint):
            try:
                return check_value(option, value, key, source)
            except ConfigError:
                continue
        raise ConfigError(f"{source}: '{key}' must be {describe(hint)} (got {value!r})")
    if origin is Literal:
        if value in typing.get_args(hint):
            return value
        raise ConfigError(
            f"{source}: '{key}' must be one of {', '.join(map(str, typing.get_args(hint)))} (got {value!r})"
        )
    if origin in (tuple, list):
        (item,) = typing.get_args(hint)[:1]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{source}: '{key}' must be a list (got {value!r})")
        return origin(check_value(item, v, f"{key}[{i}]", source) for i, v in enumerate(value))
    if hint is type(None):
        if value is None:
            return None
    elif hint is float:
        if isinstance(value, str) and EXPONENT_NUMBER.fullmatch(value):  # YAML 1.1 reads 1e-4 as a string
            value = float(value)
        if isinstance(value, int) and not isinstance(value, bool):
            value = float(in_int64(value, key, source))
        if isinstance(value, float):
            if not math.isfinite(value):
                raise ConfigError(f"{source}: '{key}' must be a finite number (got {value!r})")
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return in_int64(value, key, source)
    elif hint in (str, bool):
        if isinstance(value, hint):
            return value
    else:  # pragma: no cover - a field with an unsupported hint is a programming error
        raise TypeError(f"unsupported config type {hint!r} for {key}")
    raise ConfigError(f"{source}: '{key}' must be {describe(hint)} (got {value!r})")


def in_int64(value: int, key: str, source: str) -> int:
    """``value`` where it fits a 64-bit signed integer; a ConfigError naming the key otherwise."""
    if not INT64[0] <= value <= INT64[1]:
        raise ConfigError(f"{source}: '{key}' must fit in 64 bits (|value| < 2**63; got {len(str(value))} digits)")
    return value


def describe(hint: Any) -> str:
    """Human wording of a type hint for error messages."""
    if typing.get_origin(hint) in (Union, types.UnionType):
        return " or ".join(describe(h) for h in typing.get_args(hint))
    if typing.get_origin(hint) is Literal:
        return "one of " + ", ".join(map(repr, typing.get_args(hint)))
    if hint is type(None):
        return "null"
    return {int: "an integer", float: "a finite number", str: "a string", bool: "true/false"}.get(hint, str(hint))


def merge_section(base: Any, raw: dict[str, Any] | None, where: str, source: str) -> Any:
    """``base`` with the keys of ``raw`` replaced (nested dataclasses merged), validated."""
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: '{where}' must be a mapping, got {type(raw).__name__}")
    merged = to_plain(base)
    for key, value in raw.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return build(type(base), merged, where, source)  # unknown keys are named by build


def to_plain(obj: Any) -> Any:
    """Dataclasses/tuples to plain dicts/lists (YAML/JSON friendly)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    return obj


def hashed(obj: Any) -> Any:
    """``to_plain(obj)`` less the fields marked ``added`` that hold their default, execution choices at their fixed
    ``hash_as``: what the config hash covers."""
    if dataclasses.is_dataclass(obj):
        return {
            f.name: hashed_value(f, getattr(obj, f.name))
            for f in dataclasses.fields(obj)
            if not (f.metadata.get("added") and getattr(obj, f.name) == default_of(f))
        }
    return to_plain(obj)


def digest(plain: Any) -> str:
    """Stable 12-hex-digit hash of plain data (what ``hashed`` gives)."""
    text = json.dumps(plain, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def hashed_value(f: dataclasses.Field, value: Any) -> Any:
    """What the hash sees of one field: its value, or the fixed ``hash_as`` of an execution choice."""
    fixed = f.metadata.get("hash_as", OWN_VALUE)
    return hashed(value) if fixed is OWN_VALUE else fixed


def default_of(f: dataclasses.Field) -> Any:
    """A dataclass field's default value."""
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def point_key(axes: dict[str, Any] | None) -> str:
    """A sweep point as canonical text, to tell cells apart (``""`` for none: a cell of no sweep)."""
    return json.dumps(axes, sort_keys=True, default=str) if axes else ""


def point_text(pairs: Iterable[tuple[str, Any]]) -> str:
    """A sweep point in words: ``model.latent=32, train.lr=0.001`` (``""`` for none)."""
    return ", ".join(f"{key}={value_text(value)}" for key, value in pairs)


def value_text(value: Any) -> str:
    """A setting's value as one would type it: ``32``, ``gaussian``, ``[16, 24]``, ``true``."""
    return value if isinstance(value, str) else json.dumps(value, default=str)


RECIPE_SECTIONS = ("train", "data", "model", "classifier", "params")  # a cell's settings, as its row records them


def dotted(plain: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested plain data as flat dotted keys: ``{"train": {"lr": 1e-3}}`` -> ``{"train.lr": 1e-3}`` (a row's
    ``settings``)."""
    out: dict[str, Any] = {}
    for key, value in plain.items():
        if isinstance(value, dict):
            out.update(dotted(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def classifier_text(spec: dict[str, Any]) -> str:
    """A plain ``classifier`` section in words, as rows name it: 'cnn, 10 epochs, lr 0.002, batch 128'."""
    epochs = f"{spec['epochs']} epoch{'s' * (spec['epochs'] != 1)}"
    text = f"{spec['model']}, {epochs}, lr {spec['lr']}, batch {spec['batch_size']}"
    return text + (f", weights {PurePath(str(spec['weights'])).name}" if spec.get("weights") else "")


def dump_cell(cell: CellConfig) -> str:
    """YAML text of a resolved cell config (the record kept beside each checkpoint)."""
    return yaml.safe_dump(cell.to_dict(), sort_keys=False)
