"""The comparable setting of a results row: what every comparison holds fixed.

Two rows compare only when their settings are equal: the dataset, the training length (epochs, or a time
budget), the numbers of training and test images, the image size and channels, the latent size, the input
corruption, the downstream classifier, the metric definitions and the cell's point of its experiment's sweep.
What a technique sets for itself (its learning rate, loss, schedule, its own parameters) and the seed are its
recipe, not its setting. Rows written before a field existed get it from the cell's resolved ``config.yaml``;
what neither holds stays unknown.
"""

from __future__ import annotations

import logging
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import Any

from aebench.config import point_text, value_text
from aebench.errors import UserError
from aebench.files import read_bytes
from aebench.results.schema import AXES_FIELD
from aebench.safe_yaml import MAX_YAML_CHARS, load_yaml

log = logging.getLogger(__name__)
CONFIG_FILE = "config.yaml"


def cell_config(folder: Path) -> dict[str, Any]:
    """A cell's resolved config (plain YAML data, never executed, read within bounds), or {} where it is missing,
    a link, oversized or damaged (with a warning: its row's setting then comes from the row alone)."""
    path = Path(folder) / CONFIG_FILE
    try:
        config = load_yaml(read_bytes(path, MAX_YAML_CHARS).decode("utf-8"), str(path))
    except FileNotFoundError:
        return {}
    except (UserError, OSError, UnicodeDecodeError) as exc:  # a link, an oversized file, beyond the YAML bounds...
        why = str(exc).removeprefix(f"{path}: ") if isinstance(exc, UserError) else type(exc).__name__
        log.warning("%s: %s; skipped in the report (the row's setting is read from the row alone)", path, why)
        return {}
    return config if isinstance(config, dict) else {}


def whole(value: Any) -> int | None:
    """An integer count or size, or None (JSON null, NaN, a missing field)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return None
    return int(value)


def count(n: int | None) -> str:
    return "unknown" if n is None else f"{n:,}"


@dataclass(frozen=True)
class Setting:
    """The conditions of one comparison (see the module docstring); None: not recorded."""

    dataset: str
    epochs: int | None
    budget_seconds: float | None
    n_train: int | None
    n_test: int | None
    image_size: int | None
    channels: int | None
    latent: int | None
    corruption: str
    classifier: str
    metric_version: int | None
    sweep: tuple[tuple[str, str], ...] = ()  # the row's sweep point: (axis key, value as text) pairs; () for none

    def admits(self, other: Setting) -> bool:
        """Whether a row of setting ``other`` that records less (a cell skipped before it loaded its data knows no
        image counts) may stand in this setting: every field ``other`` records is this one's."""
        return all(theirs is None or theirs == mine for mine, theirs in zip(astuple(self), astuple(other)))

    def length(self) -> str:
        """'3 epochs', or 'a 60 s budget (at most 15 epochs)'."""
        epochs = "unknown epochs" if self.epochs is None else plural(self.epochs, "epoch")
        if self.budget_seconds is not None:
            return f"a {self.budget_seconds:g} s budget (at most {epochs})"
        return epochs

    def facts(self) -> list[tuple[str, str]]:
        """(name, value) pairs that say the setting in words, in table order."""
        size = "native size" if self.image_size is None else f"{self.image_size} px"
        channels = "native channels" if self.channels is None else plural(self.channels, "channel")
        return [
            ("length", self.length()),
            ("training images", count(self.n_train)),
            ("test images", count(self.n_test)),
            ("images", f"{size}, {channels}"),
            ("latent", count(self.latent)),
            ("corruption", self.corruption),
            ("classifier", self.classifier),
            ("metric version", "not recorded" if self.metric_version is None else str(self.metric_version)),
            *([("sweep", self.point())] if self.sweep else []),
        ]

    def point(self) -> str:
        """The sweep point in words, ``model.latent=32`` (``""`` for none)."""
        return point_text(self.sweep)

    def line(self) -> str:
        """The setting as one line: '3 epochs · 60,000 training images · 10,000 test images · ...'."""
        return " · ".join(value if name in ("length", "images") else f"{name} {value}" for name, value in self.facts())

    def differences(self, others: list[Setting]) -> str:
        """The facts where this setting differs from any of ``others`` (to tell tables of one experiment apart)."""
        mine = self.facts()
        differ = {name for other in others for name, value in mine if dict(other.facts()).get(name) != value}
        return ", ".join(
            value if name in ("length", "images") else f"{name} {value}" for name, value in mine if name in differ
        )


def corruption_text(config: dict[str, Any], row: dict[str, Any]) -> str:
    """'none', 'gaussian (sigma 0.1)', 'mask (p 0.25)', from the config, else the row's kind alone."""
    spec = config.get("data", {}).get("corruption")
    if not isinstance(spec, dict):
        return str(row.get("corruption") or "unknown")
    kind = str(spec.get("kind", "none"))
    level = {"gaussian": "sigma", "mask": "p", "salt_pepper": "p"}.get(kind)
    return f"{kind} ({level} {spec.get(level)})" if level and level in spec else kind


def classifier_text(config: dict[str, Any]) -> str:
    """'cnn, 10 epochs, lr 0.002, batch 128' (with its weights file, if any), or 'unknown' without a config."""
    spec = config.get("classifier")
    if not isinstance(spec, dict):
        return "unknown"
    text = f"{spec.get('model')}, {plural(spec.get('epochs'), 'epoch')}, lr {spec.get('lr')}, batch {spec.get('batch_size')}"
    return text + (f", weights {Path(str(spec['weights'])).name}" if spec.get("weights") else "")


def plural(n: Any, word: str) -> str:
    """'1 epoch', '3 epochs'."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def first_known(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


def setting_of(row: dict[str, Any], config: dict[str, Any]) -> Setting:
    """A row's setting: its own fields first, the cell's config for rows written before a field existed."""
    train, data, model = (config.get(k) if isinstance(config.get(k), dict) else {} for k in ("train", "data", "model"))
    budget = first_known(row.get("budget_seconds"), train.get("budget_seconds"))
    return Setting(
        dataset=str(row["dataset"]),
        epochs=whole(first_known(row.get("epochs"), train.get("epochs"))),
        budget_seconds=float(budget) if isinstance(budget, (int, float)) and budget == budget else None,
        n_train=whole(row.get("n_train")),
        n_test=whole(row.get("n_test")),
        image_size=whole(first_known(row.get("image_size"), data.get("image_size"))),
        channels=whole(first_known(row.get("channels"), data.get("channels"))),
        latent=whole(first_known(row.get("latent"), model.get("latent"))),
        corruption=corruption_text(config, row),
        classifier=classifier_text(config),
        metric_version=whole(row.get("metric_version")),
        sweep=point_of(row.get(AXES_FIELD)),
    )


def point_of(axes: Any) -> tuple[tuple[str, str], ...]:
    """A row's sweep point (its ``axes``) as hashable (key, value text) pairs; () for a row of no sweep."""
    return tuple((str(key), value_text(value)) for key, value in axes.items()) if isinstance(axes, dict) else ()
