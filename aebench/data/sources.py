"""The registered datasets: where each one's files are found, and the download (or a clear offline error) when they are not."""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from pathlib import Path

import numpy as np

from aebench.data.formats import CIFAR_FILES, IDX_FILES, check_split, find_file, read_cifar_batch, read_idx
from aebench.data.registry import SUBSET_SEED, ImageData, register_dataset
from aebench.errors import UserError
from aebench.hub.network import host_reachable

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


def download_or_explain(folder: Path, files: list[str], root: Path, dataset: str) -> None:
    """Download torchvision's ``dataset`` (a class of ``torchvision.datasets``, imported only now) into ``root``
    when its host answers; otherwise a UserError naming what to place where."""
    import torchvision.datasets

    source = getattr(torchvision.datasets, dataset)
    url = source.mirrors[0] if hasattr(source, "mirrors") else source.url
    if host_reachable(url):
        try:
            source(str(root), download=True)
            return
        except Exception as exc:  # network errors vary by backend; all mean "could not download"
            reason = f"download from {url} failed ({exc})"
    else:
        reason = f"{urllib.parse.urlparse(url).hostname} is unreachable (offline?)"
    raise UserError(
        f"dataset files missing in {folder} and {reason}: place {', '.join(files)} there, or pass --data-root"
    )


def load_idx_dataset(folders: list[Path], root: Path, dataset: str) -> ImageData:
    """An MNIST-format dataset from the first folder holding each file, torchvision's ``dataset`` downloaded into
    ``root`` (its files land in ``folders[0]``) if none does."""
    stems = [*IDX_FILES["train"], *IDX_FILES["test"]]
    if any(find_file(folders, s) is None for s in stems):
        download_or_explain(folders[0], stems, root, dataset)
    paths = [find_file(folders, s) for s in stems]
    arrays = [read_idx(p) for p in paths]
    for (images, labels), (image_path, label_path) in zip((arrays[:2], arrays[2:]), (paths[:2], paths[2:])):
        if images.ndim != 3:
            raise UserError(f"{image_path}: IDX images must be 3-D (N, H, W), got shape {list(images.shape)}")
        check_split(images, labels.astype(np.int64), 10, f"{image_path} + {label_path.name}")
    x_train, y_train, x_test, y_test = arrays
    return ImageData.from_numpy(x_train[:, None], y_train, x_test[:, None], y_test, 10)


def idx_on_disk(*folders: Callable[[Path], Path]) -> Callable[[Path], bool]:
    """Whether every IDX file is in one of the folders (each a function of the data root)."""
    return lambda root: all(find_file([f(root) for f in folders], s) for s in (*IDX_FILES["train"], *IDX_FILES["test"]))


@register_dataset(
    "mnist",
    "MNIST handwritten digits, 60k/10k, 28x28 grey (torchvision download)",
    on_disk=idx_on_disk(lambda root: root / "MNIST" / "raw"),
)
def load_mnist(root: Path) -> ImageData:
    return load_idx_dataset([root / "MNIST" / "raw"], root, "MNIST")


@register_dataset(
    "fashion-mnist",
    "Fashion-MNIST clothing, 60k/10k, 28x28 grey (Debian copy used when present)",
    on_disk=idx_on_disk(lambda root: root / "FashionMNIST" / "raw", lambda root: DEBIAN_FASHION),
    classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
)
def load_fashion_mnist(root: Path) -> ImageData:
    return load_idx_dataset([root / "FashionMNIST" / "raw", DEBIAN_FASHION], root, "FashionMNIST")


@register_dataset(
    "cifar10",
    "CIFAR-10 natural images, 50k/10k, 32x32 RGB (torchvision download)",
    on_disk=lambda root: all((root / "cifar-10-batches-py" / f).is_file() for f in CIFAR_FILES),
    classes=("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
)
def load_cifar10(root: Path) -> ImageData:
    folder = root / "cifar-10-batches-py"
    if any(not (folder / f).is_file() for f in CIFAR_FILES):
        download_or_explain(folder, CIFAR_FILES, root, "CIFAR10")
    train = [read_cifar_batch(folder / f) for f in CIFAR_FILES[:-1]]
    x_test, y_test = read_cifar_batch(folder / CIFAR_FILES[-1])
    x_train = np.concatenate([x for x, _ in train])
    y_train = np.concatenate([y for _, y in train])
    return ImageData.from_numpy(x_train, y_train, x_test, y_test, 10)


@register_dataset("digits", "scikit-learn's bundled 8x8 digits, 1,437/360 fixed split (offline)")
def load_digits(root: Path) -> ImageData:
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    order = np.random.default_rng(SUBSET_SEED).permutation(len(images))
    test, train = order[:360], order[360:]
    labels = bunch.target.astype(np.int64)
    return ImageData.from_numpy(images[train], labels[train], images[test], labels[test], 10)
