"""Image folders as datasets (``folder:PATH``): generated PNG and JPEG trees, grey and colour, odd sizes; the cache
noticing a changed folder; every hostile folder ends in one line and exit 2; a tiny run; the lossy JPEG copy of
CIFAR-10 where it is at hand."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import tarfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from helpers import REPO, TINY, error_line
from PIL import Image

from aebench import api
from aebench.cli import main
from aebench.config import DataConfig
from aebench.data import DatasetCache, get_dataset
from aebench.data import folders as folders_module
from aebench.data.folders import CACHE, folder_name
from aebench.errors import UserError
from aebench.experiment import parse_experiment

CLASSES = ("cat", "dog")
CIFAR_JPEG = REPO.parent / "shared" / "data" / "cifar10-jpeg" / "cifar10-jpeg.tar.gz"
CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def pixels(seed: int, size: tuple[int, int], mode: str) -> np.ndarray:
    """Seeded uint8 pixels of ``size`` (width, height), grey (H, W) or colour (H, W, 3)."""
    shape = (size[1], size[0]) if mode == "L" else (size[1], size[0], 3)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def write_tree(
    folder: Path,
    mode: str = "RGB",
    suffix: str = "png",
    sizes: tuple[tuple[int, int], ...] = ((9, 9), (5, 7)),
    counts: tuple[int, int] = (4, 2),
) -> Path:
    """``folder/{train,test}/{cat,dog}/<i>.<suffix>``: ``counts`` images a class, their sizes cycling through
    ``sizes``."""
    for split, count in zip(("train", "test"), counts):
        for label, name in enumerate(CLASSES):
            (folder / split / name).mkdir(parents=True)
            for i in range(count):
                array = pixels(100 * label + i, sizes[i % len(sizes)], mode)
                Image.fromarray(array).save(folder / split / name / f"{i}.{suffix}")
    return folder


def load(root: Path, name: str) -> Any:
    return get_dataset(f"folder:{name}").load(root)


@pytest.mark.parametrize("suffix", ["png", "jpg"])
@pytest.mark.parametrize("mode", ["L", "RGB"])
def test_a_folder_loads_as_uint8_images_with_its_classes(tmp_path: Path, mode: str, suffix: str) -> None:
    write_tree(tmp_path / "pets", mode, suffix)
    data = load(tmp_path, "pets")
    channels = 1 if mode == "L" else 3
    assert data.x_train.shape == (8, channels, 9, 9) and data.x_test.shape == (4, channels, 9, 9)
    assert str(data.x_train.dtype) == str(data.x_test.dtype) == "torch.uint8"
    assert data.y_train.tolist() == [0, 0, 0, 0, 1, 1, 1, 1] and data.y_test.tolist() == [0, 0, 1, 1]
    assert data.classes == CLASSES and data.num_classes == 2
    if suffix == "png":  # lossless, and a 9x9 image is stored as it is
        expected = pixels(0, (9, 9), mode)
        stored = data.x_train[0].numpy()
        assert np.array_equal(stored[0] if mode == "L" else stored.transpose(1, 2, 0), expected)


def test_grey_and_colour_together_make_colour_and_image_size_resizes(tmp_path: Path) -> None:
    folder = write_tree(tmp_path / "mixed", "L", "png", sizes=((7, 5),))
    Image.fromarray(pixels(9, (6, 6), "RGB")).save(folder / "test" / "dog" / "colour.jpeg")
    data = load(tmp_path, "mixed")
    assert data.x_train.shape == (8, 3, 7, 7) and data.x_test.shape == (5, 3, 7, 7)
    grey = data.x_train[0]
    assert bool((grey[0] == grey[1]).all() and (grey[1] == grey[2]).all())  # a grey image: three equal channels
    prepared = DatasetCache(tmp_path).prepared("folder:mixed", DataConfig(image_size=12, channels=1))
    assert prepared.x_train.shape == (8, 1, 12, 12) and prepared.classes == CLASSES


def test_hidden_and_other_files_are_ignored_and_links_inside_followed(tmp_path: Path) -> None:
    folder = write_tree(tmp_path / "pets")
    (folder / "train" / "cat" / "linked.png").symlink_to(folder / "train" / "dog" / "0.png")
    (folder / "train" / ".ipynb_checkpoints").mkdir()
    (folder / "train" / "cat" / ".thumbs").mkdir()
    Image.fromarray(pixels(1, (9, 9), "RGB")).save(folder / "train" / "cat" / ".thumbs" / "0.png")
    (folder / "train" / "cat" / ".0.png").write_bytes(b"not an image")
    (folder / "test" / "dog" / "notes.txt").write_text("not an image")
    (folder / "test" / "labels.csv").write_text("not a class")
    nested = folder / "test" / "dog" / "more"
    nested.mkdir()
    Image.fromarray(pixels(2, (9, 9), "RGB")).save(nested / "x.png")
    data = load(tmp_path, "pets")
    assert (len(data.x_train), len(data.x_test), data.classes) == (9, 5, CLASSES)
    assert bool((data.x_train[4] == data.x_train[5]).all()) and data.y_train[4] == 0  # cat/linked.png: dog/0.png


def test_an_absolute_path_is_read_and_cached_under_the_data_root(tmp_path: Path) -> None:
    write_tree(tmp_path / "elsewhere" / "photos")
    root = tmp_path / "root"
    data = get_dataset(f"folder:{tmp_path / 'elsewhere' / 'photos'}").load(root)
    assert len(data.x_train) == 8 and len(list((root / CACHE).glob("*.npz"))) == 1


def test_the_cache_is_read_back_and_a_changed_folder_decoded_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = write_tree(tmp_path / "pets")
    first = load(tmp_path, "pets")
    decoded = []
    real_decode = folders_module.decode_folder
    monkeypatch.setattr(folders_module, "decode_folder", lambda *a: decoded.append(1) or real_decode(*a))
    again = load(tmp_path, "pets")
    assert not decoded and bool((again.x_train == first.x_train).all())  # from the cache
    image = folder / "train" / "cat" / "0.png"
    Image.fromarray(255 - pixels(0, (9, 9), "RGB")).save(image)
    stamp = image.stat().st_mtime_ns + 10**9
    os.utime(image, ns=(stamp, stamp))  # a new mtime even where the clock is coarse
    changed = load(tmp_path, "pets")
    assert decoded == [1] and bool((changed.x_train[0] == 255 - first.x_train[0]).all())
    Image.fromarray(pixels(7, (9, 9), "RGB")).save(folder / "test" / "dog" / "new.png")
    assert len(load(tmp_path, "pets").x_test) == 5 and decoded == [1, 1]
    (cache,) = (tmp_path / CACHE).glob("*.npz")
    arrays = dict(np.load(cache))
    np.savez(cache, **{**arrays, "x_test": arrays["x_test"][:, :2]})  # the key right, the arrays not the folder's
    assert load(tmp_path, "pets").x_test.shape[1] == 3 and decoded == [1, 1, 1]
    cache.write_bytes(b"not an npz")  # a damaged cache is decoded again, and rewritten
    assert len(load(tmp_path, "pets").x_test) == 5 and decoded == [1, 1, 1, 1]
    assert cache.read_bytes()[:2] == b"PK"
    elsewhere = tmp_path / "elsewhere"
    (tmp_path / CACHE).rename(elsewhere)
    (tmp_path / CACHE).symlink_to(elsewhere)  # a planted link: neither read through nor written through
    written = (elsewhere / cache.name).stat().st_mtime_ns
    assert len(load(tmp_path, "pets").x_test) == 5 and decoded == [1, 1, 1, 1, 1]
    assert [p.name for p in elsewhere.iterdir()] == [cache.name]
    assert (elsewhere / cache.name).stat().st_mtime_ns == written


def test_a_folder_entry_names_its_cells_by_the_folder_and_keeps_its_spec() -> None:
    config = parse_experiment({**TINY, "datasets": ["digits", "folder:/data/My Photos!"]}, "exp")
    cells = config.cells()
    assert [(c.dataset, c.dataset_source, c.source) for c in cells] == [
        ("digits", None, "digits"),
        ("My-Photos-", "folder:/data/My Photos!", "folder:/data/My Photos!"),
    ]
    assert cells[0].config_hash == parse_experiment(TINY, "exp").cells()[0].config_hash  # built-in cells unchanged
    assert folder_name("folder:sets/cifar10-jpeg/") == "cifar10-jpeg"


@pytest.mark.parametrize(
    ("datasets", "expected"),
    [
        (["folder:imports/mnist"], "as another dataset of the experiment or a registered one"),
        (["folder:a/pets", "folder:b/pets"], "would be named 'pets'"),
        (["folder:../pets"], "expected folder:PATH"),
        (["folder:"], "expected folder:PATH"),
        (["folder:..."], "gives no dataset name"),
        (["folder:pets\nx"], "expected folder:PATH"),
    ],
)
def test_a_bad_folder_entry_is_a_config_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], datasets: list[str], expected: str
) -> None:
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump({**TINY, "datasets": datasets}))
    assert main(["run", str(path), "--dry-run"]) == 2
    assert expected in error_line(capsys)


def test_dry_run_says_whether_the_folder_is_there(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_tree(tmp_path / "pets")
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump({**TINY, "datasets": ["folder:pets", "folder:/nowhere/birds"]}))
    assert main(["run", str(path), "--data-root", str(tmp_path), "--out", str(tmp_path / "out"), "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split()[1:4] == ["folder:pets", "on", "disk"]
    assert lines[2].split()[1:5] == ["folder:/nowhere/birds", "no", "image", "folder"]
    assert [line.split()[:2] for line in lines[3:]] == [["todo", "pets"], ["todo", "birds"]]


# --------------------------------------------------------------------------- hostile folders


def png_declaring(width: int, height: int) -> bytes:
    """A 1x1 PNG whose header declares ``width`` x ``height`` (its CRC fixed): a decompression bomb's header."""
    data = b"\x89PNG\r\n\x1a\n"
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    for kind, body in ((b"IHDR", ihdr), (b"IDAT", zlib.compress(b"\0\0")), (b"IEND", b"")):
        data += struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return data


def replace(relative: str, data: bytes) -> Callable[[Path, Path], str]:
    def setup(folder: Path, root: Path) -> str:
        (folder / relative).write_bytes(data)
        return "folder:pets"

    return setup


def truncated(suffix: str) -> Callable[[Path, Path], str]:
    def setup(folder: Path, root: Path) -> str:
        image = folder / "train" / "dog" / f"0.{suffix}"
        Image.fromarray(pixels(3, (9, 9), "RGB")).save(image)
        image.write_bytes(image.read_bytes()[: image.stat().st_size // 2])
        return "folder:pets"

    return setup


def link(relative: str, target: Callable[[Path, Path], Path]) -> Callable[[Path, Path], str]:
    def setup(folder: Path, root: Path) -> str:
        (folder / relative).symlink_to(target(folder, root))
        return "folder:pets"

    return setup


def removed(relative: str) -> Callable[[Path, Path], str]:
    def setup(folder: Path, root: Path) -> str:
        for path in sorted((folder / relative).rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        (folder / relative).rmdir()
        return "folder:pets"

    return setup


def emptied(folder: Path, root: Path) -> str:
    removed("train")(folder, root)
    removed("test")(folder, root)
    return "folder:pets"


def without_images(folder: Path, root: Path) -> str:
    removed("test/dog")(folder, root)
    (folder / "test" / "dog").mkdir()
    (folder / "test" / "dog" / "notes.txt").write_text("no images here")
    return "folder:pets"


def other_classes(folder: Path, root: Path) -> str:
    (folder / "test" / "dog").rename(folder / "test" / "emu")
    return "folder:pets"


def through_link(folder: Path, root: Path) -> str:
    (root / "via").symlink_to(folder)
    return "folder:via"


def fifo(folder: Path, root: Path) -> str:
    os.mkfifo(folder / "train" / "cat" / "pipe.png")
    return "folder:pets"


def control_name(folder: Path, root: Path) -> str:
    (folder / "train" / "cat" / "0.png").rename(folder / "train" / "cat" / "bad\nname.png")
    return "folder:pets"


def victim(folder: Path, root: Path) -> Path:
    path = root.parent / "outside" / "victim.png"
    path.parent.mkdir(exist_ok=True)
    Image.fromarray(pixels(5, (9, 9), "RGB")).save(path)
    return path


HOSTILE: dict[str, tuple[Callable[[Path, Path], str], str]] = {
    "decompression bomb": (replace("train/cat/1.png", png_declaring(100_000, 100_000)), "decompression bomb"),
    "huge dimensions": (replace("train/cat/1.png", png_declaring(9000, 9000)), "declares 9000x9000 pixels"),
    "a huge side": (replace("test/cat/1.png", png_declaring(20_000, 1)), "declares 20000x1 pixels"),
    "truncated PNG": (truncated("png"), "not a readable image"),
    "truncated JPEG": (truncated("jpg"), "not a readable image"),
    "a text file named .png": (replace("train/cat/0.png", b"hello, not an image\n"), "not a readable image"),
    "an EPS file named .png": (replace("train/cat/0.png", b"%!PS-Adobe-3.0 EPSF-3.0\n"), "not a readable image"),
    "a link out of the folder": (link("train/cat/evil.png", victim), "a symbolic link to a file outside"),
    "a link to a folder": (link("train/cat/sub", lambda f, r: f / "train" / "dog"), "a symbolic link inside"),
    "a linked class folder": (link("test/bird", lambda f, r: f / "test" / "dog"), "a symbolic link inside"),
    "a dangling link": (link("train/cat/gone.png", lambda f, r: f / "nothing.png"), "cannot read"),
    "a FIFO named .png": (fifo, "not a regular file"),
    "a class folder with no images": (without_images, "test/dog: no images"),
    "train and test with other classes": (other_classes, "only in train/: dog; only in test/: emu"),
    "no train folder": (removed("train"), "no train/ folder"),
    "no test folder": (removed("test"), "no test/ folder"),
    "an empty folder": (emptied, "empty"),
    "a relative path through a link": (through_link, "passes a symbolic link below the data root"),
    "a missing folder": (lambda f, r: "folder:nothing-here", "no such folder"),
    "a name with a line break": (control_name, "a name with a control character"),
}


@pytest.mark.parametrize("case", HOSTILE)
def test_a_hostile_folder_ends_in_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    setup, expected = HOSTILE[case]
    root = tmp_path / "root"
    spec = setup(write_tree(root / "pets"), root)
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump({**TINY, "datasets": [spec], "techniques": ["pca"]}))
    assert main(["run", str(path), "--data-root", str(root), "--out", str(tmp_path / "out")]) == 2
    line = error_line(capsys)
    assert expected in line, line
    assert not (tmp_path / "out" / "cells").exists()  # stopped before any cell


def test_a_folder_too_large_once_decoded_is_refused_before_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_tree(tmp_path / "pets")
    monkeypatch.setattr(folders_module, "MAX_BYTES", 12 * (3 * 9 * 9 + 8) - 1)
    monkeypatch.setattr(folders_module, "decode", lambda *a: pytest.fail("decoded"))
    with pytest.raises(UserError, match=r"12 images at 9x9 make 3,012 bytes, more than the 3,011"):
        load(tmp_path, "pets")


def test_a_hostile_folder_in_a_subprocess_prints_no_traceback(tmp_path: Path) -> None:
    root = tmp_path / "root"
    write_tree(root / "pets")
    (root / "pets" / "train" / "cat" / "0.png").write_bytes(png_declaring(100_000, 100_000))
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump({**TINY, "datasets": ["folder:pets"], "techniques": ["pca"]}))
    command = [
        sys.executable,
        "-m",
        "aebench",
        "run",
        str(path),
        "--data-root",
        str(root),
        "--out",
        str(tmp_path / "o"),
    ]
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=300)
    errors = [line for line in done.stderr.splitlines() if line.startswith("aebench: error:")]
    assert done.returncode == 2 and "Traceback" not in done.stderr and len(errors) == 1
    assert "decompression bomb" in errors[0] and done.stderr.strip().endswith(errors[0])


# --------------------------------------------------------------------------- a run, the listing


def test_a_tiny_run_on_a_folder_gives_ok_rows_named_by_the_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "root"
    write_tree(root / "my pets", counts=(8, 3))
    settings = {
        **TINY,
        "datasets": ["folder:my pets"],
        "techniques": ["baseline", "pca"],
        "data": {"image_size": 16},
        "model": {"latent": 2},
        "train": {"epochs": 1, "batch_size": 8},
    }
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(settings))
    rows = api.run(path, tmp_path / "out", root, "cpu", executor="local")
    assert rows["status"].tolist() == ["ok", "ok"] and set(rows["dataset"]) == {"my-pets"}
    assert set(rows["dataset_source"]) == {"folder:my pets"} and set(rows["classes"]) == {2}
    (latents,) = (tmp_path / "out" / "cells" / "my-pets" / "baseline").glob("*/latents.npz")
    assert np.load(latents)["class_names"].tolist() == list(CLASSES)
    assert main(["list", "--data-root", str(root)]) == 0
    assert "folder:my pets" in capsys.readouterr().out


# --------------------------------------------------------------------------- real data


def test_the_lossy_jpeg_copy_of_cifar10_loads_as_an_image_folder(tmp_path: Path) -> None:
    if not CIFAR_JPEG.is_file():
        pytest.skip(f"{CIFAR_JPEG} absent: the lossy JPEG copy of CIFAR-10 (see ../shared/data/README.md)")
    root, per_class, taken = tmp_path / "root", 20, {}
    with tarfile.open(CIFAR_JPEG, "r:gz") as archive:
        for member in archive:
            parts = member.name.split("/")
            if member.isfile() and len(parts) == 3 and taken.get(tuple(parts[:2]), 0) < per_class:
                taken[tuple(parts[:2])] = taken.get(tuple(parts[:2]), 0) + 1
                target = root / "cifar10-jpeg" / member.name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(archive.extractfile(member).read())
    data = load(root, "cifar10-jpeg")
    assert data.classes == CIFAR_CLASSES
    assert data.x_train.shape == (200, 3, 32, 32) and data.x_test.shape == (200, 3, 32, 32)
    assert np.bincount(data.y_test.numpy()).tolist() == [per_class] * 10
    mean = data.x_train.float().mean().item() / 255
    assert 0.35 < mean < 0.6  # natural images (the whole copy's mean is 0.47)
