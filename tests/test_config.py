"""Experiment files: validation errors name the file and key; overrides, round trips and hashes behave."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from helpers import DEMO, TINY

from aebench.cli import main
from aebench.config import ConfigError, dump_cell
from aebench.data import DATASETS
from aebench.errors import UserError
from aebench.execution.runner import base_row
from aebench.experiment import load_experiment, parse_experiment
from aebench.techniques import TECHNIQUES


def with_changes(**changes: Any) -> dict[str, Any]:
    """TINY with top-level keys replaced (None removes the key)."""
    raw = copy.deepcopy(TINY)
    for key, value in changes.items():
        if value is None:
            raw.pop(key)
        else:
            raw[key] = value
    return raw


# (case id, file content, --set items, substrings the message must contain besides the file name)
ERROR_CASES = [
    ("unknown top-level key", with_changes(epochz=3), [], ["'epochz'"]),
    ("unknown key in a section", with_changes(train={"epochz": 3}), [], ["'train.epochz'"]),
    (
        "unknown nested key",
        with_changes(data={"corruption": {"kind": "gaussian", "sigmaa": 1}}),
        [],
        ["data.corruption.sigmaa"],
    ),
    ("unknown override key", with_changes(overrides={"baseline": {"foo": 1}}), [], ["'overrides.baseline.foo'"]),
    (
        "unknown key in an override section",
        with_changes(overrides={"baseline": {"train": {"foo": 1}}}),
        [],
        ["'overrides.baseline.train.foo'"],
    ),
    ("section not a mapping", with_changes(train=5), [], ["'train'", "mapping"]),
    (
        "override section not a mapping",
        with_changes(overrides={"baseline": {"train": 5}}),
        [],
        ["'overrides.baseline.train'", "mapping"],
    ),
    ("wrong type", with_changes(train={"epochs": "three"}), [], ["'train.epochs'", "integer"]),
    ("wrong type bool", with_changes(data={"augment": "yes please"}), [], ["'data.augment'"]),
    (
        "wrong type in an override",
        with_changes(overrides={"baseline": {"train": {"lr": "fast"}}}),
        [],
        ["'overrides.baseline.train.lr'"],
    ),
    ("bad choice", with_changes(train={"optimizer": "adagrad"}), [], ["'train.optimizer'", "adam", "sgd"]),
    ("unknown dataset", with_changes(datasets=["imagenet"]), [], ["'imagenet'", *DATASETS]),
    ("unknown technique", with_changes(techniques=["vae"]), [], ["'vae'", *TECHNIQUES]),
    ("unknown override technique", with_changes(overrides={"vae": {}}), [], ["overrides.vae", *TECHNIQUES]),
    ("zero epochs", with_changes(train={"epochs": 0}), [], ["'train.epochs'", ">= 1"]),
    ("negative batch size", with_changes(train={"batch_size": -8}), [], ["'train.batch_size'", ">= 1"]),
    ("zero classifier epochs", with_changes(classifier={"epochs": 0}), [], ["'classifier.epochs'"]),
    (
        "zero epochs in an override",
        with_changes(overrides={"baseline": {"train": {"epochs": 0}}}),
        [],
        ["'overrides.baseline.train.epochs'"],
    ),
    ("missing required key", with_changes(datasets=None), [], ["'datasets'"]),
    ("no seeds", with_changes(seeds=[]), [], ["'seeds'"]),
    ("negative seed", with_changes(seeds=[0, -1]), [], ["'seeds'", "0..4294967295"]),
    ("invalid YAML", "name: x\ntrain: {epochs: 1\n", [], ["invalid YAML", "line"]),
    ("empty file", "", [], ["empty"]),
    ("not a mapping", "- just\n- a list\n", [], ["mapping"]),
    ("--set without =", TINY, ["train.epochs"], ["train.epochs", "key=value"]),
    ("--set wrong type", TINY, ["train.epochs=many"], ["--set train.epochs=many: ", "'train.epochs'"]),
    ("--set unknown key", TINY, ["train.epochz=2"], ["--set train.epochz=2: ", "'train.epochz'"]),
    ("--set through a value", TINY, ["name.sub=1"], ["'name'"]),
]


def write(tmp_path: Path, content: str | dict[str, Any]) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(content if isinstance(content, str) else yaml.safe_dump(content))
    return path


@pytest.mark.parametrize(("content", "sets", "needles"), [c[1:] for c in ERROR_CASES], ids=[c[0] for c in ERROR_CASES])
def test_config_errors_name_file_and_key(tmp_path: Path, content: Any, sets: list[str], needles: list[str]) -> None:
    path = write(tmp_path, content)
    with pytest.raises(UserError) as info:
        load_experiment(path, sets)
    message = str(info.value)
    assert "\n" not in message
    by_a_set = any(n.startswith("--set ") for n in needles)  # a --set's bad value: the --set is named, not the file
    for needle in [*([] if by_a_set else [str(path)]), *needles]:
        assert needle in message


@pytest.mark.parametrize(("content", "sets", "needles"), [c[1:] for c in ERROR_CASES], ids=[c[0] for c in ERROR_CASES])
def test_config_errors_through_cli_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: Any, sets: list[str], needles: list[str]
) -> None:
    path = write(tmp_path, content)
    argv = ["-q", "run", str(path), "--dry-run", "--out", str(tmp_path / "out")]
    for item in sets:
        argv += ["--set", item]
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    named = needles[0] if needles[0].startswith("--set ") else str(path)  # what the bad input came from
    assert len(lines) == 1 and lines[0].startswith("aebench: error: ") and named in lines[0]
    assert "Traceback" not in captured.err and captured.out == ""


def test_a_binary_file_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(bytes(range(256)))
    assert main(["run", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"aebench: error: {path}: invalid YAML") and err.count("\n") == 1


def test_missing_file_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match="nope.yaml: no such experiment file"):
        load_experiment(missing)
    assert main(["run", str(missing)]) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0


def test_demo_plan_is_dataset_major() -> None:
    config = load_experiment(DEMO)
    plan = [(c.dataset, c.technique, c.seed) for c in config.cells()]
    expected = [(d, t, s) for d in config.datasets for t in config.techniques for s in config.seeds]
    assert plan == expected and len(plan) == len(config.datasets) * len(config.techniques) * len(config.seeds)


def test_set_overrides_dotted_keys(experiment_file) -> None:
    path = experiment_file(techniques=["baseline", "pca"])
    config = load_experiment(
        path,
        [
            "train.epochs=3",
            "data.corruption.kind=gaussian",
            "overrides.baseline.train.lr=0.01",
            "seeds=[4, 5]",
            "train.lr=2e-3",
        ],
    )
    cells = {(c.technique, c.seed): c for c in config.cells()}
    assert set(cells) == {(t, s) for t in ("baseline", "pca") for s in (4, 5)}
    assert all(c.train.epochs == 3 and c.data.corruption.kind == "gaussian" for c in cells.values())
    assert cells["baseline", 4].train.lr == 0.01
    assert cells["pca", 4].train.lr == 2e-3  # "2e-3" is a string to YAML 1.1, still read as a number


def test_overrides_apply_to_their_technique_only(experiment_file) -> None:
    path = experiment_file(
        techniques=["baseline", "pca"], overrides={"pca": {"model": {"latent": 3}, "data": {"limit_train": 7}}}
    )
    cells = {c.technique: c for c in load_experiment(path).cells()}
    assert (cells["pca"].model.latent, cells["pca"].data.limit_train) == (3, 7)
    assert (cells["baseline"].model.latent, cells["baseline"].data.limit_train) == (
        TINY["model"]["latent"],
        TINY["data"]["limit_train"],
    )
    assert cells["pca"].data.limit_test == cells["baseline"].data.limit_test  # unmentioned keys keep the shared value


def test_dry_run_prints_plan_without_loading_data(
    experiment_file, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def no_loading(*_: Any) -> None:
        raise AssertionError("--dry-run loaded data")

    for name, spec in DATASETS.items():
        monkeypatch.setitem(DATASETS, name, dataclasses.replace(spec, load=no_loading))
    path = experiment_file(datasets=["mnist", "digits"], techniques=["baseline", "pca"], seeds=[0, 1])
    assert (
        main(
            [
                "-q",
                "run",
                str(path),
                "--dry-run",
                "--out",
                str(tmp_path / "out"),
                "--data-root",
                str(tmp_path / "empty"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "8 cells" in out
    for dataset in ("mnist", "digits"):
        for technique in ("baseline", "pca"):
            for seed in (0, 1):
                assert any(
                    f"{dataset} " in line and f"{technique} " in line and f"seed {seed}" in line
                    for line in out.splitlines()
                )
    assert not (tmp_path / "out").exists()


def test_cell_yaml_round_trips(experiment_file) -> None:
    path = experiment_file(
        techniques=["baseline"],
        seeds=[3],
        overrides={
            "baseline": {"train": {"lr": 0.02, "optimizer": "sgd"}, "data": {"corruption": {"kind": "mask", "p": 0.4}}}
        },
    )
    (cell,) = load_experiment(path).cells()
    plain = yaml.safe_load(dump_cell(cell))
    raw = {
        "name": plain["experiment"],
        "datasets": [plain["dataset"]],
        "techniques": [plain["technique"]],
        "seeds": [plain["seed"]],
        **{key: plain[key] for key in ("train", "data", "model", "classifier")},
        "overrides": {plain["technique"]: plain["params"]},
    }
    (again,) = parse_experiment(raw, "round-trip").cells()
    assert again == cell
    assert again.config_hash == cell.config_hash


def test_the_runner_records_one_recipe_hash_per_config_across_seeds(experiment_file) -> None:
    """Seeds of one config share a recipe_hash (their config_hash differs); a changed override changes it."""
    path = experiment_file(seeds=[0, 1, 2])

    def rows(*sets: str) -> list[dict]:
        return [base_row(c, torch.device("cpu"), "abc") for c in load_experiment(path, list(sets)).cells()]

    first = rows()
    assert len({r["config_hash"] for r in first}) == 3 and len({r["recipe_hash"] for r in first}) == 1
    changed = rows("overrides.baseline.train.lr=0.01")
    assert len({r["recipe_hash"] for r in changed}) == 1 and changed[0]["recipe_hash"] != first[0]["recipe_hash"]


def test_config_hash_is_stable_and_tracks_values(experiment_file) -> None:
    path = experiment_file(seeds=[0, 1])
    first = [c.config_hash for c in load_experiment(path).cells()]
    assert first == [c.config_hash for c in load_experiment(path).cells()]
    assert first[0] != first[1]  # the seed is part of the cell
    changed = [c.config_hash for c in load_experiment(path, ["train.lr=0.01"]).cells()]
    assert set(changed).isdisjoint(first)
    nested = [c.config_hash for c in load_experiment(path, ["data.corruption.sigma=0.3"]).cells()]
    assert set(nested).isdisjoint(first)
