"""Hostile files and values: bounded readers (checked under a memory cap), every value checked before any
training, one line for every OS error of a user path and every damaged row, external services that fail fast.

Bounds these tests rely on (see README, Errors): YAML at most 64 KiB, 40 levels and 20,000 values after aliases;
at most 1,000 seeds and 10,000 cells; a gzipped IDX file promises at most 32 times its size; an ``.npz`` read by
the report holds at most 256 MiB of arrays; a CIFAR batch at most 64 MiB and 1,000,000 pickle opcodes; a tracker
answers HTTP and a Ray address accepts a connection within 5 s.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import logging
import math
import os
import pickle
import re
import socket
import subprocess
import sys
import threading
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import yaml
from helpers import REPO, TINY, error_line

from aebench.cli import main
from aebench.execution.runner import CellResult, run_experiment
from aebench.experiment import parse_experiment
from aebench.results.schema import RESULTS_FILE, ROW_FIELDS
from aebench.results.store import MAX_LINE, append_row, read_rows

MEMORY_HEADROOM = 768 * 2**20  # the capped reader may grow by this much: each bomb below would take gigabytes


# --------------------------------------------------------------------------- bounded readers, memory capped


def idx_header(*dims: int) -> bytes:
    return bytes([0, 0, 8, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)


def gzip_of_zeros(header: bytes, size: int) -> bytes:
    """A gzip of ``header`` then ``size`` zero bytes, compressed as it goes (a few MB for gigabytes)."""
    packer, chunk, parts = zlib.compressobj(9, zlib.DEFLATED, 31), bytes(2**24), []
    parts.append(packer.compress(header))
    for _ in range(size // len(chunk)):
        parts.append(packer.compress(chunk))
    return b"".join([*parts, packer.flush()])


def nested_cifar(rows: int) -> bytes:
    """A CIFAR batch whose pixels are one list of 3,072 zeros referenced ``rows`` times: tiny on disk, and
    ``rows`` x 3,072 x 8 bytes once numpy builds an array from it."""
    row = [0] * 3072
    return pickle.dumps({b"labels": [0] * rows, b"data": [row] * rows}, protocol=2)


def npz(**members: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(f"{name}.npy", data)
    return buffer.getvalue()


def npy_header(shape: tuple[int, ...]) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "<f4", "fortran_order": False, "shape": shape})
    return buffer.getvalue()


def alias_bomb(levels: int = 9) -> str:
    """The 'billion laughs': each anchor lists the previous one nine times (9**9 values from ~400 bytes)."""
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def flow_alias_bomb(levels: int = 9) -> str:
    """The same bomb on one line, as a ``--set`` value: ``[&a0 [1, ...], &a1 [*a0, ...], ...]``."""
    parts = ["&a0 [" + ", ".join(["1"] * 9) + "]"]
    parts += [f"&a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "[" + ", ".join(parts) + "]"


def zero_member_zip(name: str, size: int) -> bytes:
    """A zip (torch's checkpoint container) whose one member unzips to ``size`` zero bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive, archive.open(name, "w", force_zip64=True) as fh:
        for _ in range(size // 2**24):
            fh.write(bytes(2**24))
    return buffer.getvalue()


def mlp_checkpoint(**context: Any) -> dict[str, Any]:
    """An honest ``mlp`` checkpoint (8x8 grey images, latent 4) with ``context`` keys replaced (None: removed)."""
    from aebench.config import TrainConfig, to_plain
    from aebench.techniques import build_recipe, get_technique
    from aebench.training.recipe import BuildContext

    ctx = BuildContext(1, 8, 4, TrainConfig(), get_technique("mlp").params(), load_weights=False)
    model = build_recipe("mlp", ctx).model
    plain = {k: v for k, v in {**to_plain(ctx), **context}.items() if v is not None}
    return {"technique": "mlp", "context": plain, "state_dict": {k: v.clone() for k, v in model.state_dict().items()}}


def torch_saved(payload: dict[str, Any]) -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


SPARSE_IDX = idx_header(5, 1000, 1000_000) + b"SPARSE"  # written, then extended to 5 GB without using disk

# name -> (file name, its bytes, "module:reader(arguments)" with P the file's path, what the one-line error says)
BOMBS: dict[str, tuple[str, Callable[[], bytes] | bytes, str, str]] = {
    "gzipped IDX promising 2.5 GB": (
        "images.gz",
        lambda: gzip_of_zeros(idx_header(2_500_000, 32, 32), 2_600_000_000),
        "aebench.data.formats:read_idx(P)",
        "more than",
    ),
    "IDX header whose sizes overflow 64 bits": (
        "images.gz",
        lambda: gzip.compress(idx_header(2**16, 2**16, 2**16, 2**16)),  # 2**64: numpy's product wraps to 0
        "aebench.data.formats:read_idx(P)",
        "more than",
    ),
    "plain IDX file of 5 GB (sparse)": (
        "images",
        SPARSE_IDX,
        "aebench.data.formats:read_idx(P)",
        "more than the",
    ),
    "CIFAR pickle of nested lists (2.4 GB as an array)": (
        "test_batch",
        lambda: nested_cifar(100_000),
        "aebench.data.formats:read_cifar_batch(P)",
        "in one array, got list",
    ),
    "CIFAR pickle of 1.5 million integers (a list 4-8x its bytes once built)": (
        "test_batch",
        lambda: pickle.dumps(
            {b"labels": list(range(256, 1_500_256)), b"data": np.zeros((1, 3072), np.uint8)}, protocol=2
        ),
        "aebench.data.formats:read_cifar_batch(P)",
        "more than 1,000,000 pickle opcodes",
    ),
    "CIFAR batch of 5 GB (sparse)": ("test_batch", b"", "aebench.data.formats:read_cifar_batch(P)", "the 67,108,864"),
    "CIFAR labels as nested lists": (
        "test_batch",
        lambda: pickle.dumps({b"labels": [[0] * 3072] * 100_000, b"data": np.zeros((1, 3072), np.uint8)}, protocol=2),
        "aebench.data.formats:read_cifar_batch(P)",
        "flat list of integers",
    ),
    ".npz whose arrays declare petabytes": (
        "samples.npz",
        lambda: npz(**{k: npy_header((10**6, 3, 1024, 1024)) + bytes(64) for k in ("input", "target", "output")}),
        "aebench.files:read_npz(P, ['input', 'target', 'output'])",
        "declares",
    ),
    ".npz member unzipping to 1 GB": (
        "samples.npz",
        lambda: zero_member_zip("input.npy", 2**30),
        "aebench.files:read_npz(P, ['input'])",
        "unzip to",
    ),
    "classifier cache (torch zip) unzipping to 1 GB": (
        "cache.pt",
        lambda: zero_member_zip("archive/data/0", 2**30),
        "aebench.files:open_zip(P, 2**28)",
        "unzip to",
    ),
    "pretrained weights (torch zip) unzipping to 1 GB": (
        "resnet34.pth",
        lambda: zero_member_zip("archive/data/0", 2**30),
        "aebench.hub.weights:read_state_dict(P, 2**28)",
        "unzip to",
    ),
    "pretrained weights (.safetensors) of 1 GB (sparse)": (
        "resnet34.safetensors",
        b"",
        "aebench.hub.weights:read_state_dict(P, 2**28)",
        "more than the",
    ),
    "checkpoint whose context describes a 35 GB model (latent 200,000)": (
        "checkpoint.pt",
        lambda: torch_saved(mlp_checkpoint(latent=200_000)),
        "aebench.execution.checkpoint:load_checkpoint(P)",
        "do not fit the mlp model its context describes",
    ),
    "YAML alias bomb (9**9 values)": (
        "exp.yaml",
        lambda: alias_bomb().encode(),
        "aebench.safe_yaml:load_yaml(P.read_text(), 'exp')",
        "values once its aliases are expanded",
    ),
    "YAML nested 20,000 deep": (
        "exp.yaml",
        lambda: b"x: " + b"[" * 20_000 + b"]" * 20_000,
        "aebench.safe_yaml:load_yaml(P.read_text(), 'exp')",
        "nested deeper than 40",
    ),
    "YAML aliases chained 1,000 deep": (
        "exp.yaml",
        lambda: "".join(f"k{i}: &a{i} [{f'*a{i - 1}' if i else 1}]\n" for i in range(1000)).encode(),
        "aebench.safe_yaml:load_yaml(P.read_text(), 'exp')",
        "nested deeper than 40 levels once its aliases are expanded",
    ),
}

CAPPED = """
import resource, sys
from pathlib import Path
from aebench.errors import UserError
from {module} import {reader}
size = int(open('/proc/self/statm').read().split()[0]) * resource.getpagesize()
resource.setrlimit(resource.RLIMIT_AS, (size + {headroom}, size + {headroom}))
P = Path({path!r})
try:
    {reader}{arguments}
except UserError as exc:
    print('refused:', exc)
else:
    print('read it')
"""


# built by compressing 1-2.6 GB of zeros (about 5.6 GB in all, most of a minute): behind the slow marker
COMPRESSED = {
    "gzipped IDX promising 2.5 GB",
    ".npz member unzipping to 1 GB",
    "classifier cache (torch zip) unzipping to 1 GB",
    "pretrained weights (torch zip) unzipping to 1 GB",
}


@pytest.mark.parametrize("case", [pytest.param(c, marks=[pytest.mark.slow] if c in COMPRESSED else []) for c in BOMBS])
def test_a_crafted_file_is_refused_in_one_line_under_a_memory_cap(case: str, tmp_path: Path) -> None:
    name, content, call, expected = BOMBS[case]
    path = tmp_path / name
    data = content() if callable(content) else content
    path.write_bytes(data)
    if data is SPARSE_IDX or not data:  # empty: a sparse file of 5 GB
        os.truncate(path, 5 * 10**9 + len(data))
    module, _, reader = call.partition(":")
    reader, _, arguments = reader.partition("(")
    code = CAPPED.format(
        module=module, reader=reader, arguments=f"({arguments}", headroom=MEMORY_HEADROOM, path=str(path)
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    lines = proc.stdout.strip().splitlines()
    assert proc.returncode == 0 and len(lines) == 1 and lines[0].startswith("refused:"), proc.stdout + proc.stderr
    assert expected in lines[0]


# --------------------------------------------------------------------------- snapshots: a planted frame left out


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")


def png_header(width: int, height: int) -> bytes:
    """A PNG's signature and IHDR chunk: 8-bit grey pixels, ``width`` x ``height``."""
    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header)


def png_of_zeros(width: int, height: int) -> bytes:
    """A valid grey PNG of ``width`` x ``height`` black pixels, compressed as it goes (a decompression bomb: about
    a thousandth of its pixels' bytes)."""
    packer, rows, parts = zlib.compressobj(9), bytes((1 + width) * min(height, 1000)), []
    for start in range(0, height, 1000):
        parts.append(packer.compress(rows[: (1 + width) * min(1000, height - start)]))
    idat = b"".join([*parts, packer.flush()])
    return png_header(width, height) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def png_of(pixels: np.ndarray) -> bytes:
    import imageio.v3 as iio

    return iio.imwrite("<bytes>", pixels, extension=".png")


# name -> (the planted file's bytes for the cell's frame shape, what the warning says)
SNAPSHOT_FRAMES: dict[str, tuple[Callable[[tuple[int, ...]], bytes], str]] = {
    "a PNG header declaring 100,000 x 100,000 pixels": (
        lambda shape: png_header(100_000, 100_000),
        "100000x100000 pixels, not the",
    ),
    "a decompression bomb (81 M pixels in 80 KB)": (
        lambda shape: png_of_zeros(9000, 9000),
        "9000x9000 pixels, not the",
    ),
    "a picture of another size": (lambda shape: png_of(np.zeros((10, 10), np.uint8)), "10x10 pixels"),
    "a colour picture of the grid's size": (lambda shape: png_of(np.zeros((*shape, 3), np.uint8)), "not uint8"),
    "not a PNG": (lambda shape: b"GIF89a" + bytes(100), "not a PNG file"),
    "a damaged PNG": (lambda shape: png_of(np.zeros(shape, np.uint8))[:60], "a damaged PNG"),
    "more bytes than a snapshot holds": (
        lambda shape: png_of(np.zeros(shape, np.uint8)) + bytes(2 * math.prod(shape) + 2**16),
        "more than the",
    ),
}


@pytest.mark.parametrize("case", list(SNAPSHOT_FRAMES))
def test_a_planted_snapshot_is_left_out_of_the_gif_with_a_warning(
    case: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import imageio.v3 as iio
    import torch
    from torch import nn

    from aebench.data.pixels import Normalizer
    from aebench.execution.snapshots import Snapshots

    raw = {**TINY, "train": {**TINY["train"], "epochs": 2, "snapshot_every": 1}}
    cell = parse_experiment(raw, "x").cells()[0]
    images = torch.randint(0, 256, (12, 1, 8, 8), dtype=torch.uint8)
    snapshots = Snapshots(images, cell, Normalizer(torch.zeros(1), torch.ones(1)), tmp_path)
    for epoch, model in [(1, nn.Identity()), (2, nn.Sigmoid())]:  # two frames that differ
        snapshots(epoch, model)
    content, expected = SNAPSHOT_FRAMES[case]
    planted = tmp_path / "snapshots" / "epoch_000.png"
    planted.write_bytes(content(snapshots.shape))
    with caplog.at_level(logging.WARNING):
        gif = snapshots.write_gif()
    assert gif is not None and iio.imread(gif, index=None).shape[0] == 2  # the cell's own two frames
    assert f"{planted}: " in caplog.text and expected in caplog.text and "left out of snapshots.gif" in caplog.text


# --------------------------------------------------------------------------- checkpoints: every value checked first

# name -> (the checkpoint's payload, what the one-line error says)
CHECKPOINTS: dict[str, tuple[Callable[[], dict[str, Any]], str]] = {
    "a context lacking 'train'": (lambda: mlp_checkpoint(train=None), "'context' lacks 'train'"),
    "latent 2**40": (lambda: mlp_checkpoint(latent=2**40), "'context.latent' must be <= 1000000"),
    "2 channels": (lambda: mlp_checkpoint(in_channels=2), "'context.in_channels' must be one of 1, 3"),
    "an image side of 4096": (lambda: mlp_checkpoint(image_size=4096), "'context.image_size' must be <= 1024"),
    "an image side as text": (lambda: mlp_checkpoint(image_size="8"), "'context.image_size' must be an integer"),
    "an unknown context key": (lambda: mlp_checkpoint(extra=1), "unknown key 'context.extra'"),
    "a NaN learning rate": (
        lambda: mlp_checkpoint(train={"lr": float("nan")}),
        "'context.train.lr' must be a finite number",
    ),
    "an unknown technique parameter": (lambda: mlp_checkpoint(params={"nope": 1}), "unknown key 'context.params.nope'"),
    "normaliser statistics for 3 channels of a grey model": (
        lambda: mlp_checkpoint(input_std=[0.5, 0.5, 0.5]),
        "'context.input_std' must hold 1 numbers",
    ),
    "a zero deviation": (lambda: mlp_checkpoint(input_std=[0.0]), "'context.input_std' must be positive"),
    "a context that is a list": (lambda: {**mlp_checkpoint(), "context": [1, 2]}, "'context' must be a mapping"),
    "an unknown technique": (lambda: {**mlp_checkpoint(), "technique": "nope"}, "unknown technique 'nope'"),
    "a technique that is not a string": (
        lambda: {**mlp_checkpoint(), "technique": [1]},
        "'technique' must be a string",
    ),
    "weights that are not tensors": (
        lambda: {**mlp_checkpoint(), "state_dict": {"encoder.0.weight": 1}},
        "'state_dict' must map names to tensors",
    ),
    "weights of another latent size": (lambda: mlp_checkpoint(latent=5), "do not fit the mlp model"),
    "weights of another technique": (
        lambda: {**mlp_checkpoint(), "technique": "pca", "context": {**mlp_checkpoint()["context"], "params": {}}},
        "do not fit the pca model",
    ),
    "a side the technique cannot build": (
        lambda: {**mlp_checkpoint(image_size=7, params={}), "technique": "resnet_scratch", "state_dict": {}},
        "cannot rebuild its resnet_scratch model (ValueError",
    ),
}


@pytest.mark.parametrize("case", list(CHECKPOINTS))
def test_a_crafted_checkpoint_is_refused_in_one_line(case: str, tmp_path: Path) -> None:
    import torch

    from aebench.errors import UserError
    from aebench.execution.checkpoint import load_checkpoint

    payload, expected = CHECKPOINTS[case]
    path = tmp_path / "checkpoint.pt"
    torch.save(payload(), path)
    with pytest.raises(UserError) as caught:
        load_checkpoint(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and "\n" not in message and expected in message, message


def test_an_honest_checkpoint_still_loads(tmp_path: Path) -> None:
    import torch

    from aebench.execution.checkpoint import load_checkpoint

    payload = mlp_checkpoint()
    torch.save(payload, tmp_path / "checkpoint.pt")
    model, normalizer = load_checkpoint(tmp_path / "checkpoint.pt")
    assert all(torch.equal(model.state_dict()[k], v) for k, v in payload["state_dict"].items())
    assert normalizer(torch.ones(1, 1, 8, 8)).shape == (1, 1, 8, 8)


# --------------------------------------------------------------------------- values, before anything trains


def yaml_text(**changes: Any) -> str:
    return yaml.safe_dump({**TINY, **changes}, sort_keys=False)


# name -> (experiment text, --set values, what the one-line error says)
VALUES: dict[str, tuple[str, list[str], str]] = {
    "train.lr NaN": (yaml_text(), ["train.lr=.nan"], "'train.lr' must be a finite number"),
    "train.lr 1e999 (infinite)": (yaml_text(), ["train.lr=1e999"], "'train.lr' must be a finite number"),
    "validation_fraction NaN": (yaml_text(), ["train.validation_fraction=.nan"], "'train.validation_fraction'"),
    "budget_seconds infinite": (yaml_text(), ["train.budget_seconds=.inf"], "'train.budget_seconds'"),
    "gamma an integer beyond floats": (yaml_text(), [f"train.gamma={10**400}"], "'train.gamma' must fit in 64 bits"),
    "epochs beyond 64 bits": (yaml_text(), [f"train.epochs={2**64}"], "'train.epochs' must fit in 64 bits"),
    "epochs beyond a sane bound": (yaml_text(), [f"train.epochs={10**7}"], "'train.epochs' must be <= 1000000"),
    "model.latent beyond a sane bound": (yaml_text(), [f"model.latent={2**40}"], "'model.latent' must be <="),
    "a technique's own option NaN": (yaml_text(), ["overrides.mlp.dropout=.nan"], "'overrides.mlp.dropout'"),
    "seeds [0, 0]": (yaml_text(), ["seeds=[0, 0]"], "'seeds' lists 0 twice"),
    "a seed numpy cannot take": (yaml_text(), [f"seeds=[{2**32}]"], "'seeds' must lie in 0..4294967295"),
    "a technique listed twice": (yaml_text(), ["techniques=[baseline, pca, baseline]"], "lists 'baseline' twice"),
    "a dataset listed twice": (yaml_text(), ["datasets=[digits, digits]"], "'datasets' lists 'digits' twice"),
    "a bad override of a technique not listed": (
        yaml_text(),
        ["overrides.pca.train.lr=.nan"],
        "'overrides.pca.train.lr' must be a finite number",
    ),
    "an unknown key in an override of a technique not listed": (
        yaml_text(),
        ["overrides.mlp.hiden=[8]"],
        "unknown key 'overrides.mlp.hiden'",
    ),
    "a duplicate top-level key": (yaml_text() + "seeds: [1]\n", [], "duplicate key 'seeds'"),
    "a duplicate nested key": (yaml_text().replace("  epochs: 1\n", "  epochs: 1\n  epochs: 2\n"), [], "'epochs'"),
    "20,000-deep nesting": (yaml_text() + "x: " + "[" * 20_000 + "]" * 20_000 + "\n", [], "nested deeper than 40"),
    "YAML alias bomb": (yaml_text() + alias_bomb(), [], "values once its aliases are expanded"),
    "100,000 seeds": (yaml_text(seeds=list(range(100_000))), [], "more than the 65,536"),
    "5,000 seeds": (yaml_text(seeds=list(range(5000))), [], "'seeds' lists 5,000 seeds; at most 1,000"),
    "more than 10,000 cells": (
        yaml_text(datasets=["digits", "mnist", "cifar10", "fashion-mnist"], techniques=["baseline", "pca", "mlp"]),
        [f"seeds={list(range(1000))}"],
        "more than 10,000 cells",
    ),
    "an alias bomb in --set": (yaml_text(), [f"seeds={flow_alias_bomb()}"], "values once its aliases are expanded"),
    "a --set key 100 parts deep": (yaml_text(), [".".join(["train"] * 100) + "=1"], "more than 40 dotted parts"),
}


@pytest.mark.parametrize("case", list(VALUES))
def test_a_bad_value_is_one_line_exit_2_before_anything_runs(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text, sets, expected = VALUES[case]
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    args = [a for value in sets for a in ("--set", value)]
    assert main(["-q", "run", str(path), "--dry-run", *args]) == 2
    assert expected in error_line(capsys)


# --------------------------------------------------------------------------- OS errors of user paths: one line

LONG = "x" * 300  # one path component longer than NAME_MAX (255)

OS_ERRORS: dict[str, tuple[Callable[[Path], list[str]], str]] = {
    "--out with a name too long": (lambda t: ["run", str(exp(t)), "--out", str(t / LONG)], "--out"),
    "--data-root with a name too long": (
        lambda t: ["run", str(exp(t)), "--out", str(t / "o"), "--data-root", str(t / LONG)],
        "File name too long",
    ),
    "an experiment file with a name too long": (lambda t: ["run", str(t / LONG)], "File name too long"),
    "an experiment file that is a folder": (lambda t: ["run", str(t)], "not a regular file"),
    "an experiment file that is a FIFO": (lambda t: ["run", str(fifo(t / "exp.yaml"))], "not a regular file"),
    "--out under a file, with --track mlflow": (
        lambda t: ["run", str(exp(t)), "--out", str(exp(t) / "sub"), "--track", "mlflow"],
        "Not a directory",
    ),
    "report --results with a name too long": (lambda t: ["report", "--results", str(t / LONG)], "File name too long"),
    "report --out under a file": (
        lambda t: ["report", "--results", str(results_folder(t)), "--out", str(exp(t) / "sub")],
        "Not a directory",
    ),
}


def exp(tmp: Path) -> Path:
    path = tmp / "exp.yaml"
    if not path.exists():
        path.write_text(yaml_text())
    return path


def fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def results_folder(tmp: Path) -> Path:
    (tmp / "res").mkdir()
    (tmp / "res" / RESULTS_FILE).write_text("")
    return tmp / "res"


@pytest.mark.parametrize("case", list(OS_ERRORS))
def test_an_os_error_of_a_user_path_is_one_line_exit_2(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args, expected = OS_ERRORS[case]
    assert main(["-q", *args(tmp_path)]) == 2
    assert expected in error_line(capsys)


# --------------------------------------------------------------------------- damaged row fields: skipped, warned


def good_row(**values: Any) -> dict[str, Any]:
    base = dict.fromkeys(ROW_FIELDS)
    base.update(experiment="e", dataset="digits", technique="pca", seed=0, status="ok", reason="", config_hash="h1")
    return {**base, "mse": 0.01, "train_seconds": 1.5, **values}


DAMAGED_ROWS: dict[str, tuple[bytes, str]] = {
    "a number stored as a string": (json.dumps(good_row(seed=1, mse="0.5")).encode(), "'mse'"),
    "an infinite number (1e999)": (
        json.dumps(good_row(seed=1)).replace('"mse": 0.01', '"mse": 1e999').encode(),
        "'mse'",
    ),
    "an integer beyond 64 bits": (json.dumps(good_row(seed=1, params=10**30)).encode(), "'params'"),
    "true/false for a number": (json.dumps(good_row(seed=1, n_train=True)).encode(), "'n_train'"),
    "a status not ok, failed or skipped": (json.dumps(good_row(seed=1, status="done")).encode(), "'status'"),
    "a number for a text field": (json.dumps(good_row(seed=1, device=3)).encode(), "'device'"),
    "a seed beyond 64 bits": (json.dumps(good_row(seed=2**70)).encode(), "'seed'"),
    "a line longer than 64 KiB": (json.dumps(good_row(seed=1, reason="x" * MAX_LINE)).encode(), "longer than"),
    "JSON nested 10,000 deep": (b'{"a": ' + b"[" * 10_000 + b"]" * 10_000 + b"}", "unreadable"),
}


@pytest.mark.parametrize("case", list(DAMAGED_ROWS))
def test_a_row_with_a_damaged_field_is_skipped_with_a_warning_naming_the_line(
    case: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    line, expected = DAMAGED_ROWS[case]
    append_row(tmp_path, good_row())
    with open(tmp_path / RESULTS_FILE, "ab") as fh:
        fh.write(line + b"\n")
    append_row(tmp_path, good_row(seed=2))
    with caplog.at_level(logging.WARNING):
        assert [r["seed"] for r in read_rows(tmp_path)] == [0, 2]
    assert f"{tmp_path / RESULTS_FILE}:2: invalid row skipped" in caplog.text and expected in caplog.text


def test_report_and_run_go_on_past_rows_with_numbers_stored_as_strings(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    config = {**TINY, "techniques": ["pca"]}
    out = tmp_path / "res"
    (row,) = run_experiment(parse_experiment(config, "x"), out, Path("/nonexistent"), "cpu")
    with open(out / RESULTS_FILE, "a") as fh:
        fh.write(json.dumps({**row, "seed": 5, "mse": "0.5", "train_seconds": "12"}) + "\n")
    assert main(["-q", "report", "--results", str(out), "--out", str(tmp_path / "report")]) == 0
    exp_path = tmp_path / "exp.yaml"
    exp_path.write_text(yaml.safe_dump(config))
    assert main(["-q", "run", str(exp_path), "--out", str(out)]) == 0  # the summary after the run reads it too
    assert "invalid row skipped ('mse' is not a finite number)" in caplog.text
    assert "Traceback" not in capsys.readouterr().err


# --------------------------------------------------------------------------- services fail fast, rows survive them


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_unreachable_mlflow_server_is_one_line_before_the_lock(
    tmp_path: Path, closed_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("mlflow", reason="the [track] extra is not installed")
    out = tmp_path / "out"
    uri = f"http://127.0.0.1:{closed_port}"
    assert main(["-q", "run", str(exp(tmp_path)), "--out", str(out), "--track", f"mlflow:{uri}"]) == 2
    assert f"--track mlflow:{uri}: nothing answers at 127.0.0.1:{closed_port} within 5 s" in error_line(capsys)
    assert not (out / ".aebench.lock").exists() and not (out / RESULTS_FILE).exists()


@contextlib.contextmanager
def http_server(reply: bytes | None) -> Iterator[tuple[int, list[bytes]]]:
    """A server on 127.0.0.1: for ``reply`` None one that accepts connections (the kernel's backlog) but never
    answers; else one that answers the first request with ``reply`` and closes. Yields its port and the requests."""
    requests: list[bytes] = []
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(30)

        def answer() -> None:
            with contextlib.suppress(OSError):
                conn, _ = server.accept()
                with conn:
                    requests.append(conn.recv(4096))
                    conn.sendall(reply)

        if reply is not None:
            threading.Thread(target=answer, daemon=True).start()
        yield server.getsockname()[1], requests


def test_an_mlflow_port_that_never_answers_is_one_line_before_the_lock(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    with http_server(None) as (port, _):
        uri = f"http://127.0.0.1:{port}"
        assert main(["-q", "run", str(exp(tmp_path)), "--out", str(out), "--track", f"mlflow:{uri}"]) == 2
    line = error_line(capsys)
    assert f"--track mlflow:{uri}: 127.0.0.1:{port} accepts a connection but gives no HTTP answer within 5 s" in line
    assert not (out / ".aebench.lock").exists() and not (out / RESULTS_FILE).exists()


# name -> (what the server answers, what the one-line error says; None: no error)
HTTP_ANSWERS: dict[str, tuple[bytes, str | None]] = {
    "MLflow's health answer": (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK", None),
    "any HTTP status (a proxy's 404)": (b"HTTP/1.0 404 Not Found\r\n\r\n", None),
    "another protocol": (b"SSH-2.0-OpenSSH_9.6\r\n", "answers, but not in HTTP (b'SSH-2.0"),
    "a connection closed at once": (b"", "answers, but not in HTTP (b'')"),
}


@pytest.mark.parametrize("case", list(HTTP_ANSWERS))
def test_an_mlflow_server_must_answer_http(case: str) -> None:
    from aebench.errors import UserError
    from aebench.execution.services import require_http_answer

    reply, expected = HTTP_ANSWERS[case]
    with http_server(reply) as (port, requests):
        url = f"http://127.0.0.1:{port}/mlflow/"
        if expected is None:
            require_http_answer(url, "--track")
        else:
            with pytest.raises(UserError, match=re.escape(expected)):
                require_http_answer(url, "--track")
    assert requests[0].startswith(b"GET /mlflow/health HTTP/1.0\r\n")


def test_the_mlflow_limits_hold_only_while_the_tracker_calls_mlflow(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stand-in MLflow records the environment at each call; the process's own is as before, after each."""
    from aebench.execution.tracking import MLFLOW_LIMITS, MlflowTracker

    timeout, retries, backoff = MLFLOW_LIMITS
    seen: list[dict[str, str | None]] = []
    record = lambda *args, **kwargs: seen.append({n: os.environ.get(n) for n in MLFLOW_LIMITS})  # noqa: E731

    class Client:
        def __init__(self, tracking_uri: str) -> None:
            record()

        def __getattr__(self, name: str) -> Callable[..., SimpleNamespace]:
            return lambda *args, **kwargs: (
                record() or SimpleNamespace(experiment_id="1", info=SimpleNamespace(run_id="r"))
            )

    monkeypatch.setitem(sys.modules, "mlflow", SimpleNamespace(MlflowClient=Client))
    monkeypatch.setitem(sys.modules, "mlflow.entities", SimpleNamespace(Metric=record, Param=record))
    monkeypatch.delenv(timeout, raising=False)
    monkeypatch.delenv(backoff, raising=False)
    monkeypatch.setenv(retries, "5")  # the user's own value: kept, during the calls too
    before = dict(os.environ)
    tracker = MlflowTracker("sqlite:///unused.db", "tiny")
    assert dict(os.environ) == before
    row = {"technique": "pca", "dataset": "digits", "seed": 0, "status": "ok", "config_hash": "h", "reason": ""}
    tracker.log_cell(CellResult(row, config={"train": {"lr": 0.1}}))
    assert dict(os.environ) == before
    assert len(seen) > 4 and all(s == {timeout: "10", retries: "5", backoff: "1"} for s in seen)


@pytest.mark.parametrize("address", ["closed", "127.0.0.1:99999"])
def test_an_unreachable_ray_address_is_one_line_before_the_lock(
    address: str, tmp_path: Path, closed_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("ray", reason="the [ray] extra is not installed")
    target = f"127.0.0.1:{closed_port}" if address == "closed" else address
    out = tmp_path / "out"
    assert main(["-q", "run", str(exp(tmp_path)), "--out", str(out), "--executor", "ray", "--address", target]) == 2
    assert error_line(capsys).startswith(f"aebench: error: --address {target}: ")
    assert not (out / ".aebench.lock").exists()


class DyingTracker:
    """Logs the first cell, then fails as a tracker whose server died would."""

    def __init__(self) -> None:
        self.logged: list[int] = []

    def log_cell(self, result: CellResult) -> None:
        if self.logged:
            raise ConnectionError("tracking server went away")
        self.logged.append(result.row["seed"])


def test_a_tracker_dying_mid_run_loses_no_row(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    tracker = DyingTracker()
    config = parse_experiment({**TINY, "techniques": ["pca"], "seeds": [0, 1, 2]}, "x")
    rows = run_experiment(config, tmp_path, Path("/nonexistent"), "cpu", tracker=tracker)
    assert tracker.logged == [0] and [r["seed"] for r in read_rows(tmp_path)] == [r["seed"] for r in rows] == [0, 1, 2]
    assert caplog.text.count("tracking digits / pca") == 2
