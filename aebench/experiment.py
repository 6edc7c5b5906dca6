"""Experiment files: YAML -> a validated ExperimentConfig -> cells, names checked against the registries.

The schema and value checks live in :mod:`aebench.config`; this module adds what needs the registries.
"""

from __future__ import annotations

import copy
import itertools
import math
from dataclasses import dataclass, replace
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
    point_key,
    to_plain,
    value_text,
)
from aebench.data import DATASETS
from aebench.data.folders import folder_name, is_folder_spec
from aebench.errors import UserError
from aebench.files import read_bytes
from aebench.safe_yaml import MAX_DEPTH, MAX_YAML_CHARS, YamlError, YamlRefused, load_yaml
from aebench.techniques import TECHNIQUES, get_technique

MAX_SEEDS = 1_000
MAX_CELLS = 10_000  # datasets x techniques x seeds (x sweep points): planned and checked in about a second
SEED_RANGE = (0, 2**32 - 1)  # what numpy and scikit-learn accept


@dataclass(frozen=True)
class Axis:
    """One sweep axis: a dotted setting key, as it would be written in the file (``model.latent``,
    ``overrides.progressive_resizing.sizes``), and the values it takes, in order."""

    key: str
    values: tuple[Any, ...]

    @property
    def technique(self) -> str | None:
        """The one technique whose override this axis sets (``overrides.<technique>....``), else None: all of them."""
        parts = self.key.split(".")
        return parts[1] if parts[0] == "overrides" else None

    def applies(self, technique: str) -> bool:
        return self.technique in (None, technique)

    def path(self) -> list[str]:
        """Where the axis's value sits in a resolved cell config (``CellConfig.to_dict``): ``train.lr`` and
        ``overrides.<t>.train.lr`` -> [train, lr]; ``overrides.<t>.sizes`` -> [params, sizes]."""
        parts = self.key.split(".")
        if parts[0] != "overrides":
            return parts
        return parts[2:] if parts[2] in SECTIONS else ["params", *parts[2:]]


@dataclass(frozen=True)
class ExperimentConfig:
    """A parsed experiment file: datasets x sweep points x techniques x seeds, plus shared and per-technique
    settings; a dataset is a registered name or an image folder's ``folder:PATH``, as written."""

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
    sweep: tuple[Axis, ...] = ()

    def cells(self) -> list[CellConfig]:
        """The cell plan: by dataset, then sweep point (the first axis slowest), technique and seed. A technique's
        cell at a point where only another technique's option changes is the one it has already: listed once."""
        resolved: dict[tuple[str, str], dict[str, Any]] = {}  # (technique, its point) -> its settings there
        for point in self.points():
            for technique in self.techniques:
                own = self.own_point(technique, point)
                key = (technique, point_key(own))
                if key not in resolved:
                    resolved[key] = self.settings_at(technique, own)
        return [
            self.cell(dataset, technique, seed, settings)
            for dataset in self.datasets
            for (technique, _), settings in resolved.items()
            for seed in self.seeds
        ]

    def cell(self, dataset: str, technique: str, seed: int, settings: dict[str, Any] | None = None) -> CellConfig:
        """One cell with ``settings`` (default: the sweep's first point, each axis at its first value); ``dataset``
        as the experiment names it (an image folder's cell is named by the folder's name, and keeps its
        ``folder:PATH`` as ``dataset_source``)."""
        if settings is None:
            first = self.own_point(technique, {axis.key: axis.values[0] for axis in self.sweep})
            settings = self.settings_at(technique, first)
        name, source = (folder_name(dataset), dataset) if is_folder_spec(dataset) else (dataset, None)
        return CellConfig(self.name, name, technique, seed, **settings, dataset_source=source)

    def points(self) -> list[dict[str, Any]]:
        """Every point of the sweep, one value per axis, the first axis slowest; ``[{}]`` without a sweep."""
        keys = [axis.key for axis in self.sweep]
        return [dict(zip(keys, values)) for values in itertools.product(*(axis.values for axis in self.sweep))]

    def own_point(self, technique: str, point: dict[str, Any]) -> dict[str, Any]:
        """The part of ``point`` that sets ``technique``'s settings (another technique's options left out)."""
        return {axis.key: point[axis.key] for axis in self.sweep if axis.applies(technique)}

    def settings_at(self, technique: str, point: dict[str, Any]) -> dict[str, Any]:
        """``settings`` with each axis of ``point`` set as its key would be in the file, plus the point itself,
        each value as resolved (``axes``)."""
        settings = self.patched(point).settings(technique)
        plain = to_plain(settings)
        axes = {axis.key: lookup(plain, axis.path()) for axis in self.sweep if axis.key in point}
        return {**settings, "axes": axes}

    def patched(self, point: dict[str, Any]) -> ExperimentConfig:
        """This experiment with each key of ``point`` set to its value (sections validated here, a technique's
        overrides when its settings are resolved)."""
        patch: dict[str, Any] = {}
        for key, value in point.items():
            set_path(patch, key.split("."), value)
        sections = {
            name: merge_section(getattr(self, name), patch[name], name, self.source)
            for name in SECTIONS
            if name in patch
        }
        overrides = merged(self.overrides, patch.get("overrides", {}))
        return replace(self, overrides=overrides, **sections)

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


def set_path(mapping: dict[str, Any], parts: list[str], value: Any) -> None:
    """``mapping[parts[0]][parts[1]]... = value``, making the sections on the way."""
    for part in parts[:-1]:
        mapping = mapping.setdefault(part, {})
    mapping[parts[-1]] = value


def merged(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``patch`` on top, mappings merged key by key at every depth."""
    out = dict(base)
    for key, value in patch.items():
        both = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = merged(out[key], value) if both else value
    return out


def lookup(mapping: Any, parts: list[str]) -> Any:
    """``mapping[parts[0]][parts[1]]...``."""
    for part in parts:
        mapping = mapping[part]
    return mapping


def gives(mapping: Any, parts: list[str]) -> bool:
    """Whether a nested mapping sets the value at ``parts`` (whole, or a key within it)."""
    for part in parts:
        if not (isinstance(mapping, dict) and part in mapping):
            return False
        mapping = mapping[part]
    return True


TOP_LEVEL = {"name", "datasets", "techniques", "seeds", "overrides", "sweep", *SECTIONS}


def apply_sets(raw: dict[str, Any], sets: list[str], source: str) -> dict[str, Any]:
    """Apply ``--set a.b.c=value`` overrides (value parsed as YAML) to the raw mapping read from ``source``;
    ``--set sweep.model.latent=[8, 16]`` gives the sweep axis ``model.latent`` (axis keys stay dotted)."""
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
        if parts[0] == "sweep" and len(parts) > 1:
            parts = ["sweep", ".".join(parts[1:])]
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
    sweep = check_sweep(raw.get("sweep"), techniques, source)
    points = math.prod(len(axis.values) for axis in sweep)
    if len(datasets) * len(techniques) * len(seeds) * points > MAX_CELLS:
        raise ConfigError(
            f"{source}: {len(datasets)} datasets x {len(techniques)} techniques x {len(seeds)} seeds"
            f"{f' x {points} sweep points' if sweep else ''} is more than {MAX_CELLS:,} cells; "
            "split the study into several experiments"
        )
    sections = {key: build(cls, raw.get(key), key, source) for key, cls in SECTIONS.items()}
    overrides = raw.get("overrides") or {}
    if not isinstance(overrides, dict):
        raise ConfigError(f"{source}: 'overrides' must map technique names to settings")
    for technique, override in overrides.items():
        get_technique(technique, where=f"{source}: 'overrides.{technique}'")
        if not isinstance(override, dict):
            raise ConfigError(f"{source}: 'overrides.{technique}' must be a mapping")
    check_axes_apart(sweep, techniques, overrides, source)
    config = ExperimentConfig(
        name=name,
        datasets=datasets,
        techniques=techniques,
        seeds=seeds,
        overrides=overrides,
        source=source,
        sweep=sweep,
        **sections,
    )
    check_axis_values(config)
    # resolve every technique named anywhere now, listed or only overridden, so errors surface before any data loads
    cells = [config.cell(datasets[0], technique, seeds[0]) for technique in dict.fromkeys([*techniques, *overrides])]
    if sweep:  # and every point of the sweep
        cells += [c for c in config.cells() if (c.dataset, c.seed) == (datasets[0], seeds[0])]
    for cell in cells:
        check_weights(cell, source)
    return config


def check_sweep(raw: Any, techniques: tuple[str, ...], source: str) -> tuple[Axis, ...]:
    """The ``sweep`` section: dotted setting keys, each with a list of values (each value is checked as the
    setting itself once the experiment is built: ``check_axis_values``)."""
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{source}: 'sweep' must map dotted setting keys to lists of values, e.g. model.latent: [8, 32]"
        )
    return tuple(check_axis(key, values, techniques, source) for key, values in raw.items())


def check_axis(key: Any, values: Any, techniques: tuple[str, ...], source: str) -> Axis:
    """One axis: a setting's dotted key (``<section>.<key>`` or ``overrides.<technique>.<key>``, the technique a
    listed one) and a non-empty list of values."""
    parts = str(key).split(".")
    shared = parts[0] in SECTIONS and len(parts) > 1
    option = parts[0] == "overrides" and len(parts) > 2
    if not (isinstance(key, str) and (shared or option) and all(parts)):
        raise ConfigError(
            f"{source}: 'sweep.{key}': an axis is a dotted setting key, <section>.<key> ({', '.join(SECTIONS)}) "
            "or overrides.<technique>.<key>"
        )
    if option:
        get_technique(parts[1], where=f"{source}: 'sweep.{key}'")
        if parts[1] not in techniques:
            raise ConfigError(f"{source}: 'sweep.{key}': '{parts[1]}' is not among the experiment's techniques")
    if not (isinstance(values, list) and values):
        raise ConfigError(f"{source}: 'sweep.{key}' must list the values to sweep, e.g. [8, 32] (got {values!r})")
    return Axis(key, tuple(values))


def check_axes_apart(
    sweep: tuple[Axis, ...], techniques: tuple[str, ...], overrides: dict[str, Any], source: str
) -> None:
    """No two axes set one setting of a technique (or one inside the other), and no technique's override sets a
    shared axis's key: the override would hide the axis (the technique's cells would repeat one config)."""
    for technique in techniques:
        mine = [axis for axis in sweep if axis.applies(technique)]
        for number, axis in enumerate(mine):
            for other in mine[number + 1 :]:
                depth = min(len(axis.path()), len(other.path()))
                if axis.path()[:depth] == other.path()[:depth]:
                    raise ConfigError(
                        f"{source}: 'sweep.{axis.key}' and 'sweep.{other.key}' both set "
                        f"{'.'.join(axis.path()[:depth])} of {technique}: sweep it once"
                    )
            if axis.technique is None and gives(overrides.get(technique), axis.path()):
                raise ConfigError(
                    f"{source}: 'sweep.{axis.key}' and 'overrides.{technique}.{axis.key}' both set {axis.key} of "
                    f"{technique}: remove one, or sweep overrides.{technique}.{axis.key} instead"
                )


def check_axis_values(config: ExperimentConfig) -> None:
    """Each axis value is valid where its key would be in the file (else one line naming the axis and the value),
    and no two are one value once resolved (``1e-3`` and ``0.001``)."""
    source = config.source
    for axis in config.sweep:
        technique = axis.technique or config.techniques[0]
        seen = set()
        for value in axis.values:
            try:
                resolved = config.settings_at(technique, {axis.key: value})["axes"][axis.key]
            except ConfigError as exc:
                reason = str(exc).removeprefix(f"{source}: ")
                raise ConfigError(f"{source}: 'sweep.{axis.key}': value {value!r}: {reason}") from None
            if point_key({axis.key: resolved}) in seen:
                raise ConfigError(f"{source}: 'sweep.{axis.key}' lists {value_text(resolved)} twice (each value once)")
            seen.add(point_key({axis.key: resolved}))


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
