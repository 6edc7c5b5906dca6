"""Every bad input stops ``aebench`` before any training with exit status 2 and one line naming what is wrong."""

from __future__ import annotations

import gzip
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from helpers import TINY, write_idx

from aebench.cli import main

IDX_STEMS = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def write_mnist(root: Path, **replace: np.ndarray | bytes) -> Path:
    """Good MNIST IDX files under ``root/MNIST/raw``; ``replace`` swaps a file (by stem) for an array or raw bytes."""
    rng = np.random.default_rng(0)
    arrays: dict[str, Any] = {
        IDX_STEMS[0]: rng.integers(0, 256, (12, 28, 28), dtype=np.uint8),
        IDX_STEMS[1]: rng.integers(0, 10, 12, dtype=np.uint8),
        IDX_STEMS[2]: rng.integers(0, 256, (5, 28, 28), dtype=np.uint8),
        IDX_STEMS[3]: rng.integers(0, 10, 5, dtype=np.uint8),
    }
    folder = root / "MNIST" / "raw"
    for stem, value in {**arrays, **replace}.items():
        folder.mkdir(parents=True, exist_ok=True)
        if isinstance(value, bytes):
            (folder / f"{stem}.gz").write_bytes(value)
        else:
            write_idx(folder / f"{stem}.gz", value)
    return folder


def write_cifar(root: Path, test_batch: Any) -> None:
    """Good CIFAR-10 training batches, and ``test_batch`` pickled as given (or raw bytes)."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    good = {b"labels": [1, 2], b"data": rng.integers(0, 256, (2, 3072), dtype=np.uint8)}
    for i in range(1, 6):
        (folder / f"data_batch_{i}").write_bytes(pickle.dumps(good, protocol=2))
    payload = test_batch if isinstance(test_batch, bytes) else pickle.dumps(test_batch, protocol=2)
    (folder / "test_batch").write_bytes(payload)


def good_idx_gz() -> bytes:
    return gzip.compress(bytes([0, 0, 8, 1]) + (5).to_bytes(4, "big") + bytes(5))


Setup = Callable[[Path], tuple[dict[str, Any], list[str]]]  # tmp -> (experiment overrides, extra CLI args)
CASES: dict[str, tuple[Setup, str]] = {
    # --- paths
    "--out is a file": (lambda t: ({}, ["--out", str(touch(t / "f"))]), "not a folder"),
    "--out cannot be created": (lambda t: ({}, ["--out", str(touch(t / "f") / "sub")]), "--out"),
    "--data-root is a file": (lambda t: ({}, ["--data-root", str(touch(t / "f"))]), "--data-root"),
    "classifier.weights missing": (
        lambda t: ({"classifier": {"model": "resnet34", "weights": str(t / "none.pth")}}, []),
        "weights file not found",
    ),
    "classifier.weights with the cnn": (
        lambda t: ({"classifier": {"weights": str(touch(t / "w.pth"))}}, []),
        "classifier.weights",
    ),
    # --- values
    "corruption p above 1": (lambda t: ({"data": {"corruption": {"kind": "mask", "p": 1.5}}}, []), "data.corruption.p"),
    "image_size 4096": (lambda t: ({"data": {"image_size": 4096}}, []), "data.image_size"),
    "image_size the model cannot use": (lambda t: ({"data": {"image_size": 10}}, []), "image size 10"),
    "limit_train 1: no training step": (lambda t: ({"data": {"limit_train": 1}}, []), "data.limit_train"),
    "empty name": (lambda t: ({"name": ""}, []), "'name'"),
    "name escaping the results root": (lambda t: ({"name": "../escape"}, []), "'name'"),
    # --- data files (MNIST IDX, gzipped)
    "garbage MNIST .gz": (lambda t: mnist(t, **{IDX_STEMS[0]: b"not gzip at all"}), IDX_STEMS[0]),
    "truncated MNIST .gz": (lambda t: mnist(t, **{IDX_STEMS[0]: good_idx_gz()[:-6]}), IDX_STEMS[0]),
    "IDX wrong magic": (
        lambda t: mnist(t, **{IDX_STEMS[1]: gzip.compress(b"\x00\x00\x0d\x01" + bytes(8))}),
        IDX_STEMS[1],
    ),
    "IDX label count differs": (
        lambda t: mnist(t, **{IDX_STEMS[1]: np.zeros(11, np.uint8)}),
        "11 labels for 12 images",
    ),
    "IDX label out of range": (
        lambda t: mnist(t, **{IDX_STEMS[3]: np.full(5, 12, np.uint8)}),
        "labels must lie in 0..9",
    ),
    "IDX 1-D images": (lambda t: mnist(t, **{IDX_STEMS[0]: np.zeros(12, np.uint8)}), "3-D"),
    # --- data files (CIFAR-10 pickles)
    "garbage CIFAR pickle": (lambda t: cifar(t, b"\x00garbage"), "test_batch"),
    "truncated CIFAR pickle": (
        lambda t: cifar(t, pickle.dumps({b"labels": [1], b"data": np.zeros((1, 3072), np.uint8)}, protocol=2)[:-20]),
        "test_batch",
    ),
    "CIFAR pickle of a list": (lambda t: cifar(t, [1, 2, 3]), "b'data' and b'labels'"),
    "CIFAR data of the wrong shape": (
        lambda t: cifar(t, {b"labels": [1], b"data": np.zeros((1, 100), np.uint8)}),
        "b'data' must be uint8",
    ),
    "CIFAR label count differs": (
        lambda t: cifar(t, {b"labels": [1, 2, 3], b"data": np.zeros((1, 3072), np.uint8)}),
        "3 labels for 1 images",
    ),
}


def touch(path: Path) -> Path:
    path.write_bytes(b"x")
    return path


def mnist(tmp: Path, **replace: Any) -> tuple[dict[str, Any], list[str]]:
    write_mnist(tmp / "data", **replace)
    return {"datasets": ["mnist"]}, ["--data-root", str(tmp / "data")]


def cifar(tmp: Path, test_batch: Any) -> tuple[dict[str, Any], list[str]]:
    write_cifar(tmp / "data", test_batch)
    return {"datasets": ["cifar10"]}, ["--data-root", str(tmp / "data")]


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_exits_2_with_one_line(
    case: str, tmp_path: Path, offline, capsys: pytest.CaptureFixture[str]
) -> None:
    setup, expected = CASES[case]
    overrides, args = setup(tmp_path)
    experiment = tmp_path / "exp.yaml"
    experiment.write_text(yaml.safe_dump({**TINY, **overrides}))
    if "--out" not in args:
        args += ["--out", str(tmp_path / "out")]
    assert main(["-q", "run", str(experiment), "--device", "cpu", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("aebench: error: "), err
    assert expected in err[0]
    assert not (tmp_path / "out" / "results.jsonl").exists()  # nothing trained


PATH_CASES = ["--out is a file", "--out cannot be created", "--data-root is a file"]


@pytest.mark.parametrize("case", PATH_CASES)
def test_the_dry_run_refuses_the_paths_the_run_refuses(
    case: str, tmp_path: Path, experiment_file, capsys: pytest.CaptureFixture[str]
) -> None:
    setup, expected = CASES[case]
    _, args = setup(tmp_path)
    lines = []
    for dry_run in ([], ["--dry-run"]):
        assert main(["-q", "run", str(experiment_file()), "--device", "cpu", *args, *dry_run]) == 2
        lines.append(capsys.readouterr().err)
    assert lines[0] == lines[1] and len(lines[1].splitlines()) == 1 and expected in lines[1]


def test_the_dry_run_refuses_a_link_in_out_and_leaves_no_folder_behind(
    tmp_path: Path, experiment_file, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "results.jsonl").symlink_to(touch(tmp_path / "victim"))
    assert main(["-q", "run", str(experiment_file()), "--out", str(tmp_path / "out"), "--dry-run"]) == 2
    assert "a symbolic link" in capsys.readouterr().err
    assert main(["-q", "run", str(experiment_file()), "--out", str(tmp_path / "new" / "deep"), "--dry-run"]) == 0
    assert not (tmp_path / "new").exists()


def test_report_out_is_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "res").mkdir()
    (tmp_path / "res" / "results.jsonl").write_text("")
    assert main(["report", "--results", str(tmp_path / "res"), "--out", str(touch(tmp_path / "f"))]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a folder" in err[0]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_out_is_a_user_error(tmp_path: Path, experiment_file, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "ro"
    out.mkdir(mode=0o500)
    assert main(["-q", "run", str(experiment_file()), "--out", str(out)]) == 2
    assert "cannot write there" in capsys.readouterr().err
