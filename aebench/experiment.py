"""Experiment files: YAML -> a validated ExperimentConfig -> cells, names checked against the registries.

The schema and value checks live in :mod:`aebench.config`; this module adds what needs the registries.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aebench.config import (
    SAFE_NAME,
    SECTIONS,
    CellConfig,
    ClassifierConfig,
    ConfigError,
    DataConfig,
    ModelConfig,
    TrainConfig,
    build,
    check_value,
    merge_section,
)
from aebench.data import DATASETS
from aebench.data.folders import folder_name, is_folder_spec
from aebench.errors import UserError
from aebench.files import read_bytes
from aebench.safe_yaml import MAX_DEPTH, MAX_YAML_CHARS, YamlError, YamlRefused, load_yaml
from aebench.techniques import TECHNIQUES, get_technique

MAX_SEEDS = 1_000
MAX_CELLS = 10_000  # datasets x techniques x seeds: planned and checked in about a second
SEED_RANGE = (0, 2**32 - 1)  # what numpy and scikit-learn accept


@dataclass(frozen=True)
class ExperimentConfig:
    """A parsed experiment file: datasets x techniques x seeds, plus shared and per-technique settings; a dataset is
    a registered name or an image folder's ``folder:PATH``, as written."""

    name: str
    datasets: tuple[str, ...]
    techniques: tuple[str, ...]
    seeds: tuple[int, ...]
    train: TrainConfig
    data: DataConfig
    model: ModelConfig
    classifier: ClassifierConfig
    overrides: dict[str, dict[str, Any]]
    source: str = "<memory>"

    def cells(self) -> list[CellConfig]:
        """The cell plan, dataset-major, with per-technique overrides resolved (once per technique)."""
        settings = {technique: self.settings(technique) for technique in self.techniques}
        return [
            self.cell(dataset, technique, seed, settings[technique])
            for dataset in self.datasets
            for technique in self.techniques
            for seed in self.seeds
        ]

    def cell(self, dataset: str, technique: str, seed: int, settings: dict[str, Any] | None = None) -> CellConfig:
        """One cell; ``dataset`` as the experiment names it (an image folder's cell is named by the folder's name,
        and keeps its ``folder:PATH`` as ``dataset_source``)."""
        name, source = (folder_name(dataset), dataset) if is_folder_spec(dataset) else (dataset, None)
        settings = self.settings(technique) if settings is None else settings
        return CellConfig(self.name, name, technique, seed, **settings, dataset_source=source)

    def settings(self, technique: str) -> dict[str, Any]:
        """A technique's sections and parameters: the shared ones with its overrides on top, validated."""
        override = self.overrides.get(technique, {})
        sections = {
            name: merge_section(
                getattr(self, name), override.get(name, {}), f"overrides.{technique}.{name}", self.source
            )
            for name in SECTIONS
        }
        own = {k: v for k, v in override.items() if k not in SECTIONS}
        params = build(get_technique(technique).params, own, f"overrides.{technique}", self.source, tuple(SECTIONS))
        return {**sections, "params": params}


TOP_LEVEL = {"name", "datasets", "techniques", "seeds", "overrides", *SECTIONS}


def apply_sets(raw: dict[str, Any], sets: list[str], source: str) -> dict[str, Any]:
    """Apply ``--set a.b.c=value`` overrides (value parsed as YAML) to the raw mapping read from ``source``."""
    raw = copy.deepcopy(raw)
    for item in sets:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"{source}: --set '{item[:80]}': expected key=value, e.g. train.epochs=2")
        parts = key.split(".")
        if len(parts) > MAX_DEPTH:
            raise ConfigError(f"{source}: --set {key[:80]}...: more than {MAX_DEPTH} dotted parts")
        try:
            value = load_yaml(text, f"--set {key}")
        except YamlRefused:
            raise
        except YamlError:  # not YAML: the text itself, as a string
            value = text
        node = raw
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"{source}: --set '{item}': '{part}' is not a section")
            node = child
        node[parts[-1]] = value
    return raw


def parse_experiment(raw: Any, source: str) -> ExperimentConfig:
    """Validate a raw mapping into an ExperimentConfig; names are checked against the registries."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: an experiment file must be a YAML mapping")
    unknown = sorted(set(raw) - TOP_LEVEL)
    if unknown:
        raise ConfigError(f"{source}: unknown key '{unknown[0]}' (known: {', '.join(sorted(TOP_LEVEL))})")
    for key in ("name", "datasets", "techniques"):
        if key not in raw:
            raise ConfigError(f"{source}: missing required key '{key}'")
    name = check_value(str, raw["name"], "name", source)
    if not SAFE_NAME.fullmatch(name):
        raise ConfigError(
            f"{source}: 'name' {name!r} must be 1-100 letters, digits, '.', '_' or '-', starting with a letter "
            "or digit (it names the results folder)"
        )
    datasets = check_names(raw["datasets"], "datasets", DATASETS, source, folders=True)
    techniques = check_names(raw["techniques"], "techniques", TECHNIQUES, source)
    seeds = check_seeds(raw.get("seeds", [0]), source)
    if len(datasets) * len(techniques) * len(seeds) > MAX_CELLS:
        raise ConfigError(
            f"{source}: {len(datasets)} datasets x {len(techniques)} techniques x {len(seeds)} seeds is more than "
            f"{MAX_CELLS:,} cells; split the study into several experiments"
        )
    sections = {key: build(cls, raw.get(key), key, source) for key, cls in SECTIONS.items()}
    overrides = raw.get("overrides") or {}
    if not isinstance(overrides, dict):
        raise ConfigError(f"{source}: 'overrides' must map technique names to settings")
    for technique, override in overrides.items():
        get_technique(technique, where=f"{source}: 'overrides.{technique}'")
        if not isinstance(override, dict):
            raise ConfigError(f"{source}: 'overrides.{technique}' must be a mapping")
    config = ExperimentConfig(
        name=name, datasets=datasets, techniques=techniques, seeds=seeds, overrides=overrides, source=source, **sections
    )
    # resolve every technique named anywhere now, listed or only overridden, so errors surface before any data loads
    for technique in dict.fromkeys([*techniques, *overrides]):
        check_weights(config.cell(datasets[0], technique, seeds[0]), source)
    return config


def check_weights(cell: CellConfig, source: str) -> None:
    """Every local weights file a cell names exists, and ``classifier.weights`` is only set where it is used."""
    if cell.classifier.weights is not None and cell.classifier.model != "resnet34":
        raise ConfigError(
            f"{source}: 'classifier.weights' is used only with classifier.model: resnet34 "
            f"(got model {cell.classifier.model!r}); remove it or switch the model"
        )
    for key, path in (
        ("classifier.weights", cell.classifier.weights),
        (f"overrides.{cell.technique}.weights", getattr(cell.params, "weights", None)),
    ):
        if path is not None and not Path(path).expanduser().is_file():
            raise ConfigError(f"{source}: '{key}': weights file not found: {path}")


def check_names(value: Any, key: str, known: dict[str, Any], source: str, folders: bool = False) -> tuple[str, ...]:
    """A non-empty list of distinct registered names; ``folders``: image folders (``folder:PATH``) too, each named
    by its folder's name, which must be no registered name nor another entry's."""
    names = check_value(tuple[str, ...], value if isinstance(value, list) else [value], key, source)
    listed = ", ".join(known) + ("; or folder:PATH, an image folder" if folders else "")
    if not names:
        raise ConfigError(f"{source}: '{key}' must list at least one name (known: {listed})")
    for item in names:
        if item not in known and not (folders and is_folder_spec(item)):
            raise ConfigError(f"{source}: '{key}': unknown name '{item}' (known: {listed})")
    check_unique(names, key, source)
    if folders:
        try:
            named = [folder_name(item) if is_folder_spec(item) else item for item in names]
        except UserError as exc:
            raise ConfigError(f"{source}: '{key}': {exc}") from None
        for item, name in zip(names, named):
            if item != name and (name in known or named.count(name) > 1):
                raise ConfigError(
                    f"{source}: '{key}': {item} would be named '{name}', as another dataset of the experiment or a "
                    "registered one: rename the folder"
                )
    return names


def check_seeds(value: Any, source: str) -> tuple[int, ...]:
    """1 to ``MAX_SEEDS`` distinct seeds, each in ``SEED_RANGE``."""
    if isinstance(value, list) and len(value) > MAX_SEEDS:  # before checking each one: a long list costs time
        raise ConfigError(f"{source}: 'seeds' lists {len(value):,} seeds; at most {MAX_SEEDS:,}")
    seeds = check_value(tuple[int, ...], value, "seeds", source)
    if not seeds:
        raise ConfigError(f"{source}: 'seeds' must list at least one seed")
    low, high = SEED_RANGE
    outside = [s for s in seeds if not low <= s <= high]
    if outside:  # numpy and scikit-learn take seeds in 0 .. 2**32 - 1
        raise ConfigError(f"{source}: 'seeds' must lie in {low}..{high} (got {outside[0]})")
    check_unique(seeds, "seeds", source)
    return seeds


def check_unique(values: tuple[Any, ...], key: str, source: str) -> None:
    """A ConfigError naming the first entry listed twice: the same cell would run twice into one folder."""
    seen: set[Any] = set()
    for value in values:
        if value in seen:
            raise ConfigError(f"{source}: '{key}' lists {value!r} twice (each entry once)")
        seen.add(value)


def load_experiment(path: str | Path, sets: list[str] | None = None) -> ExperimentConfig:
    """Read, override and validate an experiment file."""
    path = Path(path)
    try:
        data = read_bytes(path, MAX_YAML_CHARS, follow=True)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such experiment file (see experiments/ for examples)") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the experiment file ({exc.strerror})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:  # a binary file is not YAML either
        raise ConfigError(f"{path}: invalid YAML: not UTF-8 text") from None
    raw = load_yaml(text, str(path))
    if raw is None:
        raise ConfigError(f"{path}: the file is empty")
    if not (isinstance(raw, dict) and sets):
        return parse_experiment(raw, str(path))
    final = apply_sets(raw, sets, str(path))
    try:
        return parse_experiment(final, str(path))
    except ConfigError:
        culprit = first_breaking_set(raw, sets, str(path))
        if culprit is None:  # the file itself is at fault
            raise
        parse_experiment(final, f"--set {culprit}")  # the same error, naming the --set that brought it
        raise


def first_breaking_set(raw: dict[str, Any], sets: list[str], source: str) -> str | None:
    """The first ``--set`` after which a valid file stops validating (None when the file alone is invalid)."""
    for count in range(len(sets) + 1):
        try:
            parse_experiment(apply_sets(raw, sets[:count], source), source)
        except ConfigError:
            return sets[count - 1] if count else None
    return None
