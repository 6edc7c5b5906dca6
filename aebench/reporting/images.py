"""One comparison group's pictures: the same test images reconstructed by each technique, 2-D latent codes
coloured by class name, and training-snapshot GIFs."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

from aebench.errors import UserError
from aebench.files import read_bytes, safe_folder, write_bytes
from aebench.reporting.cellfiles import Cell, read_arrays, reason, skipped
from aebench.reporting.figures import Drawn, Figure
from aebench.reporting.groups import Group
from aebench.reporting.sanity import Flags

MAX_LATENT_POINTS = 5000
GIF_LIMIT = 64 * 2**20  # bytes of a snapshots.gif copied into the report
COLOURS = sns.color_palette("tab10", 10)  # one per class label (mod 10)
SAMPLE_ARRAYS = {"input": 4, "target": 4, "output": 4}  # (N, C, H, W) in [0, 1]


def first_seed_cells(cells: list[Cell], group: Group) -> list[Cell]:
    """One cell per technique of a group, at the smallest seed every technique has (else each one's smallest)."""
    mine = sorted((c for c in cells if c.group == group), key=lambda c: c.seed)
    seeds = (
        set.intersection(*({c.seed for c in mine if c.technique == t} for t in {c.technique for c in mine}))
        if mine
        else set()
    )
    picked: dict[str, Cell] = {}
    for cell in mine:
        if (not seeds or cell.seed == min(seeds)) and cell.technique not in picked:
            picked[cell.technique] = cell
    order = list(dict.fromkeys(c.technique for c in cells if c.group == group))
    return [picked[t] for t in order if t in picked]


def image_row(images: np.ndarray) -> np.ndarray:
    """(N, C, H, W) in [0, 1] -> one (H, N*(W+1), C) strip with one-pixel white gaps."""
    n, c, h, w = images.shape
    strip = np.ones((h, n * (w + 1) - 1, c), dtype=np.float32)
    for i, image in enumerate(images):
        strip[:, i * (w + 1) : i * (w + 1) + w] = image.transpose(1, 2, 0)
    return strip.clip(0, 1)


def samples_of(cells: list[Cell]) -> dict[str, dict[str, np.ndarray]]:
    """Each technique's saved test images (techniques whose file is missing or damaged left out)."""
    found = [(c.technique, read_arrays(c.folder / "samples.npz", SAMPLE_ARRAYS)) for c in cells]
    return {technique: arrays for technique, arrays in found if arrays is not None}


def reconstructions(group: Group, cells: list[Cell], flags: Flags, order: list[str]) -> Drawn | None:
    """Originals, the corrupted input where the experiment corrupts it, and each technique's reconstruction (in
    ``order``, the table's)."""
    found = samples_of(cells)
    samples = {t: found[t] for t in order if t in found}
    if not samples:
        return None
    first = next(iter(samples.values()))
    rows = [("original", first["target"])]
    if group.corruption != "none":
        rows.append(("input\n(corrupted)", first["input"]))
    for technique, s in samples.items():
        labels = [f.label for f in flags.of(technique)]
        rows.append(("\n".join([technique, *(f"({label})" for label in labels)]), s["output"]))
    fig, axes = plt.subplots(len(rows), 1, figsize=(8.5, 0.3 + 1.1 * len(rows)), squeeze=False, layout="constrained")
    for ax, (name, images) in zip(axes[:, 0], rows):
        strip = image_row(images)
        ax.imshow(strip[..., 0] if strip.shape[-1] == 1 else strip, cmap="gray", vmin=0, vmax=1,
                  interpolation="nearest")  # fmt: skip
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
    fig.suptitle(f"{group.label}: the same test images, seed {cells[0].seed}", fontsize=10)
    return Drawn(
        fig,
        f"reconstructions_{group.stem}",
        f"{group.label}: test images, the input where corrupted ({group.corruption}), and each technique's "
        "reconstruction (output clamped to [0, 1]); '(flagged)': see the flags under the results table.",
    )


def class_names(data: dict[str, np.ndarray]) -> dict[int, str]:
    """Label -> the class name saved with the codes, or the label number where the file predates names."""
    labels = sorted({int(v) for v in data["labels"][:MAX_LATENT_POINTS]})
    names = data.get("class_names")
    if names is None:
        return {k: str(k) for k in labels}
    return {k: str(names[k]) if 0 <= k < len(names) else str(k) for k in labels}


def read_latents(folder: Path) -> dict[str, np.ndarray] | None:
    """``z`` (N, 2) and ``labels`` (N,), with ``class_names`` where the file has them."""
    data = read_arrays(folder / "latents.npz", {"z": 2, "labels": 1})
    names = (
        read_arrays(folder / "latents.npz", {"class_names": 1}, optional=True, text=True) if data is not None else None
    )
    return data if names is None else {**data, **names}


def latents(group: Group, cells: list[Cell]) -> Drawn | None:
    """2-D latent codes of the test images, coloured by class, one panel per technique that saved them."""
    found = [(c.technique, data) for c in cells if (data := read_latents(c.folder)) is not None]
    if not found:
        return None
    fig, axes = plt.subplots(1, len(found), figsize=(4.2 * len(found) + 2.2, 4.2), squeeze=False, layout="constrained")
    names: dict[int, str] = {}
    for ax, (technique, data) in zip(axes[0], found):
        z, labels = data["z"][:MAX_LATENT_POINTS], data["labels"][:MAX_LATENT_POINTS].astype(int)
        names.update(class_names(data))
        ax.scatter(z[:, 0], z[:, 1], c=[COLOURS[k % 10] for k in labels], s=6, linewidths=0)
        ax.set(title=technique, xlabel="z₁", ylabel="z₂")
    handles = [plt.Line2D([], [], color=COLOURS[k % 10], marker="o", ls="") for k in sorted(names)]
    named = any(names[k] != str(k) for k in names)
    fig.legend(handles, [names[k] for k in sorted(names)], title="class" if named else "class (label)",
               loc="outside right center", frameon=False, fontsize=9)  # fmt: skip
    fig.suptitle(f"{group.label}: 2-D latent codes of the test images", fontsize=11)
    return Drawn(fig, f"latents_{group.stem}", f"{group.label}: 2-D latent codes of test images, coloured by class.")


def snapshots(cells: list[Cell], out: Path) -> list[Figure]:
    """Copy each technique's ``snapshots.gif`` (first seed) into ``figures/snapshots/``; a link, a non-regular or
    an oversized file is skipped with a warning."""
    copied = []
    for cell in cells:
        gif = cell.folder / "snapshots.gif"
        try:
            data = read_bytes(gif, GIF_LIMIT)
        except FileNotFoundError:
            continue
        except (UserError, OSError) as exc:
            skipped(gif, reason(gif, exc))
            continue
        name = f"{cell.group.stem}_{cell.technique}_seed{cell.seed}.gif"
        write_bytes(safe_folder(out, out / "figures" / "snapshots") / name, data)
        caption = f"{cell.group.label} / {cell.technique}: reconstructions during training"
        copied.append(Figure(f"figures/snapshots/{name}", caption))
    return copied
