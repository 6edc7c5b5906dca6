"""Dataset loaders read the original on-disk formats; missing files offline fail fast and say what to place where."""

from __future__ import annotations

import dataclasses
import socket
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import write_idx

from aebench.config import DataConfig
from aebench.data import DATASETS, DatasetCache, ImageData, registry, sources
from aebench.data.formats import CIFAR_FILES, read_idx
from aebench.data.registry import prepare
from aebench.errors import UserError
from aebench.hub.network import host_reachable

IDX_STEMS = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]


def assert_matches_idx(loaded: ImageData, arrays: dict[str, np.ndarray]) -> None:
    x_train, y_train, x_test, y_test = (arrays[s] for s in IDX_STEMS)
    assert loaded.x_train.dtype == torch.uint8 and loaded.y_train.dtype == torch.int64
    assert loaded.x_train.shape == (len(x_train), 1, 28, 28) and loaded.x_test.shape == (len(x_test), 1, 28, 28)
    assert np.array_equal(loaded.x_train[:, 0].numpy(), x_train) and np.array_equal(loaded.x_test[:, 0].numpy(), x_test)
    assert np.array_equal(loaded.y_train.numpy(), y_train) and np.array_equal(loaded.y_test.numpy(), y_test)
    assert loaded.num_classes == 10


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
@pytest.mark.parametrize(("name", "folder"), [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST")])
def test_idx_datasets_round_trip(
    tmp_path: Path, idx_files, offline, monkeypatch, name: str, folder: str, gz: bool
) -> None:
    monkeypatch.setattr(sources, "DEBIAN_FASHION", tmp_path / "no-debian-copy")
    arrays = idx_files(tmp_path / folder / "raw", gz=gz)
    assert_matches_idx(DATASETS[name].load(tmp_path), arrays)


def test_fashion_mnist_falls_back_to_the_debian_folder(tmp_path: Path, idx_files, offline, monkeypatch) -> None:
    debian = tmp_path / "debian"
    arrays = idx_files(debian, gz=True, seed=3)
    monkeypatch.setattr(sources, "DEBIAN_FASHION", debian)
    assert_matches_idx(DATASETS["fashion-mnist"].load(tmp_path / "empty-root"), arrays)


def test_cifar10_round_trip(tmp_path: Path, cifar_files, offline) -> None:
    batches = cifar_files(tmp_path, per_batch=3)
    loaded = DATASETS["cifar10"].load(tmp_path)
    assert loaded.x_train.shape == (15, 3, 32, 32) and loaded.x_test.shape == (3, 3, 32, 32)
    assert loaded.x_train.dtype == torch.uint8 and loaded.y_train.dtype == torch.int64
    train_rows = np.concatenate([batches[f][b"data"] for f in CIFAR_FILES[:-1]])
    # a CIFAR row is 1024 red, then 1024 green, then 1024 blue values, each a row-major 32x32 plane
    n, c, y, x = 7, 2, 5, 30
    assert loaded.x_train[n, c, y, x].item() == train_rows[n, c * 1024 + y * 32 + x]
    assert np.array_equal(loaded.x_train.flatten(1).numpy(), train_rows)
    assert np.array_equal(loaded.x_test.flatten(1).numpy(), batches["test_batch"][b"data"])
    assert loaded.y_train.tolist() == [label for f in CIFAR_FILES[:-1] for label in batches[f][b"labels"]]
    assert loaded.y_test.tolist() == batches["test_batch"][b"labels"]


@pytest.mark.parametrize(
    ("name", "folder", "files"),
    [
        ("mnist", "MNIST/raw", IDX_STEMS),
        ("fashion-mnist", "FashionMNIST/raw", IDX_STEMS),
        ("cifar10", "cifar-10-batches-py", CIFAR_FILES),
    ],
)
def test_missing_files_offline_name_folder_and_files(
    tmp_path: Path, offline, monkeypatch, name: str, folder: str, files: list[str]
) -> None:
    monkeypatch.setattr(sources, "DEBIAN_FASHION", tmp_path / "no-debian-copy")
    start = time.perf_counter()
    with pytest.raises(UserError) as info:
        DATASETS[name].load(tmp_path)
    assert time.perf_counter() - start < 5
    message = str(info.value)
    assert str(tmp_path / folder) in message and "unreachable" in message and "--data-root" in message
    assert all(f in message for f in files)


def test_partial_idx_files_offline_still_fail_cleanly(tmp_path: Path, idx_files, offline) -> None:
    idx_files(tmp_path / "MNIST" / "raw")
    (tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(UserError, match="t10k-labels-idx1-ubyte"):
        DATASETS["mnist"].load(tmp_path)


def test_host_reachable_is_false_for_a_closed_port() -> None:
    with socket.socket() as sock:  # bind then close: nothing listens on the port afterwards
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    start = time.perf_counter()
    assert host_reachable(f"http://127.0.0.1:{port}/file.gz", timeout=1.0) is False
    assert time.perf_counter() - start < 2


def test_host_reachable_gives_up_within_its_timeout() -> None:
    start = time.perf_counter()  # 192.0.2.0/24 is reserved for documentation and never routed
    assert host_reachable("https://192.0.2.1/data.tar.gz", timeout=0.5) is False
    assert time.perf_counter() - start < 2


def test_host_reachable_is_true_for_a_listening_port() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        assert host_reachable(f"http://127.0.0.1:{server.getsockname()[1]}/", timeout=1.0) is True


@pytest.mark.parametrize(
    ("payload", "needle"), [(b"\x00\x00\x0d\x01\x00\x00\x00\x01\x00", "not an unsigned-byte IDX"), (None, "truncated")]
)
def test_corrupt_idx_files_are_user_errors(tmp_path: Path, payload: bytes | None, needle: str) -> None:
    path = tmp_path / "images"
    if payload is None:
        write_idx(path, np.zeros((4, 28, 28), np.uint8))
        path.write_bytes(path.read_bytes()[:-10])
    else:
        path.write_bytes(payload)
    with pytest.raises(UserError, match=needle):
        read_idx(path)


def test_digits_split_is_offline_and_fixed() -> None:
    first, second = DATASETS["digits"].load(Path("/nonexistent")), DATASETS["digits"].load(Path("/nonexistent"))
    assert (len(first.x_train), len(first.x_test)) == (1437, 360)
    assert first.x_train.shape[1:] == (1, 8, 8) and first.x_train.dtype == torch.uint8
    assert first.x_train.max().item() == 255 and first.x_train.min().item() == 0
    assert set(first.y_train.tolist()) == set(range(10))
    assert torch.equal(first.x_test, second.x_test) and torch.equal(first.y_train, second.y_train)


def indexed(n: int = 50, channels: int = 1, size: int = 28) -> ImageData:
    """Image i is filled with the value i and labelled i, so subsets can be checked for alignment."""
    images = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, channels, size, size).contiguous()
    return ImageData(images, torch.arange(n), images[:20].clone(), torch.arange(20), n)


def test_prepare_resizes_and_repeats_grey_to_three_channels() -> None:
    prepared = prepare(indexed(), DataConfig(image_size=32, channels=3))
    assert prepared.x_train.shape == (50, 3, 32, 32) and prepared.x_test.shape == (20, 3, 32, 32)
    assert prepared.x_train.dtype == torch.uint8
    # a flat image stays flat at its own value, in every channel
    assert torch.equal(prepared.x_train, torch.arange(50, dtype=torch.uint8).view(50, 1, 1, 1).expand(50, 3, 32, 32))


def test_prepare_resize_keeps_content() -> None:
    image = torch.zeros(1, 1, 28, 28, dtype=torch.uint8)
    image[..., 14:, :] = 200  # bottom half bright
    raw = ImageData(image, torch.zeros(1, dtype=torch.long), image, torch.zeros(1, dtype=torch.long), 10)
    out = prepare(raw, DataConfig(image_size=32)).x_train[0, 0]
    assert out.shape == (32, 32)
    assert out[:14].max().item() == 0 and out[18:].min().item() == 200


def test_prepare_colour_to_grey_uses_luma_weights() -> None:
    pixel = torch.tensor([100, 200, 50], dtype=torch.uint8).view(1, 3, 1, 1).expand(1, 3, 4, 4)
    raw = ImageData(pixel, torch.zeros(1, dtype=torch.long), pixel, torch.zeros(1, dtype=torch.long), 10)
    grey = prepare(raw, DataConfig(channels=1)).x_train
    assert grey.shape == (1, 1, 4, 4) and grey.unique().item() == round(0.299 * 100 + 0.587 * 200 + 0.114 * 50)


def test_limit_subsets_are_fixed_aligned_and_sized() -> None:
    cfg = DataConfig(limit_train=10, limit_test=5)
    first, second = prepare(indexed(), cfg), prepare(indexed(), cfg)
    assert (len(first.x_train), len(first.x_test)) == (10, 5)
    assert torch.equal(first.y_train, second.y_train) and torch.equal(first.y_test, second.y_test)
    assert torch.equal(first.x_train[:, 0, 0, 0].long(), first.y_train)  # each image keeps its own label
    assert len(set(first.y_train.tolist())) == 10 and first.y_train.tolist() != list(
        range(10)
    )  # distinct, not just the head
    assert prepare(indexed(), DataConfig(limit_train=500)).x_train.shape[0] == 50  # a limit above the size keeps all


def test_prepare_rejects_other_channel_counts() -> None:
    with pytest.raises(UserError, match="channels"):
        prepare(indexed(), DataConfig(channels=2))


def test_dataset_cache_loads_each_dataset_once(monkeypatch) -> None:
    calls = []
    spec = DATASETS["digits"]
    monkeypatch.setitem(
        DATASETS, "digits", dataclasses.replace(spec, load=lambda root: calls.append(root) or indexed())
    )
    cache = DatasetCache(Path("/nowhere"))
    small = cache.prepared("digits", DataConfig(limit_train=5))
    full = cache.prepared("digits", DataConfig())
    assert len(calls) == 1 and (len(small.x_train), len(full.x_train)) == (5, 50)


def test_unknown_dataset_lists_the_known_ones() -> None:
    with pytest.raises(UserError) as info:
        registry.get_dataset("imagenet")
    assert all(name in str(info.value) for name in DATASETS)
