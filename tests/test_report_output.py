"""What the report writes and owns: its manifest, figures whose labels never collide, and technique facts read
from rows alone (a newly registered technique needs no edit in the report)."""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from helpers import REPO, TINY
from report_rows import make_row, write_results
from torch import nn

from aebench import cli
from aebench.execution.runner import run_experiment
from aebench.experiment import load_experiment
from aebench.reporting.build import drawn, section
from aebench.reporting.cellfiles import group_cells
from aebench.reporting.curves import curves
from aebench.reporting.document import Contents, latex
from aebench.reporting.figures import palette, text_overlaps
from aebench.reporting.groups import groups
from aebench.reporting.manifest import MANIFEST
from aebench.reporting.rows import load
from aebench.results.store import read_rows
from aebench.techniques import TECHNIQUES, register_technique
from aebench.training.recipe import BuildContext, Recipe, single_phase


def small_results(folder: Path, experiment: str = "exp") -> Path:
    rows = [
        make_row(experiment, "digits", t, s, config_hash=f"{t[:2]}{s}") for t in ("baseline", "other") for s in range(3)
    ]
    return write_results(folder, rows, cells=False)


def report(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str]:
    code = cli.main(["report", *args])
    return code, capsys.readouterr().err.strip()


def test_the_report_refuses_to_replace_another_results_report(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    first, second, out = small_results(tmp_path / "a"), small_results(tmp_path / "b", "other"), tmp_path / "report"
    (out / "results").mkdir(parents=True)
    (out / "results" / "keep.txt").write_text("not the report's")
    assert report(capsys, "--results", str(first), "--out", str(out))[0] == 0
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["results"] == ["../a"] and "tables/results_exp_digits.csv" in manifest["files"]
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    code, err = report(capsys, "--results", str(second), "--out", str(out))
    assert code == 2 and len(err.splitlines()) == 1 and "other results (../a)" in err and "--force" in err
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before  # nothing touched
    assert report(capsys, "--results", str(first), str(second), "--out", str(out))[0] == 0  # adding results is fine
    assert report(capsys, "--results", str(second), "--out", str(out), "--force")[0] == 0
    assert not (out / "tables" / "results_exp_digits.csv").exists()  # the old report's own file, now stale
    assert (out / "tables" / "results_other_digits.csv").is_file()
    assert (out / "results" / "keep.txt").read_text() == "not the report's"  # never the report's: kept


def test_report_files_no_manifest_accounts_for_are_not_overwritten(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "report"
    out.mkdir()
    (out / "README.md").write_text("someone's notes")
    code, err = report(capsys, "--results", str(small_results(tmp_path / "a")), "--out", str(out))
    assert code == 2 and "README.md" in err and "no aebench report manifest" in err
    assert (out / "README.md").read_text() == "someone's notes"
    (out / MANIFEST).write_text("{not json")
    code, err = report(capsys, "--results", str(small_results(tmp_path / "b")), "--out", str(out))
    assert code == 2 and "damaged report manifest" in err


def stress_rows() -> list[dict]:
    """Eight techniques with long names, a reference, one collapsed and one with a single seed."""
    names = [f"technique_with_a_long_name_{i}" for i in range(5)] + ["baseline", "pca", "collapsed_one"]
    rows, rng = [], np.random.default_rng(1)
    for i, name in enumerate(names):
        for seed in range(1 if i == 4 else 3):
            collapsed = {"mse": 0.3, "accuracy": 0.11} if name == "collapsed_one" else {}
            rows.append(
                make_row("stress", "digits", name, seed, rng=rng, config_hash=f"c{i}{seed}", epochs=3, **collapsed)
            )
    return rows


@pytest.fixture(scope="module")
def stress(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, list, pd.DataFrame]:
    folder = write_results(tmp_path_factory.mktemp("stress"), stress_rows())
    for cell in (folder / "cells" / "digits" / "baseline").iterdir():
        np.savez(cell / "latents.npz", z=np.random.default_rng(0).normal(size=(60, 2)), labels=np.arange(60) % 10,
                 class_names=np.array(["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                                       "Sneaker", "Bag", "Ankle boot"]))  # fmt: skip
    frame = load([folder]).frame
    cells = group_cells(frame, groups(frame))
    return frame, cells, curves(cells)


def drawn_figures(frame: pd.DataFrame, cells: list, points: pd.DataFrame) -> list:
    """Every figure of the frame's single group, drawn as the report draws them (not saved)."""
    (group,) = groups(frame)
    s = section(group, frame, cells, points)
    return drawn(s, frame, cells, points, palette(list(s.table.numbers["technique"].iloc[:-1])))


def test_no_label_of_any_figure_overlaps_another_or_leaves_the_figure(stress: tuple) -> None:
    figures = drawn_figures(*stress)
    assert [d.name.split("_stress")[0] for d in figures] == [
        "metrics", "accuracy_vs_mse", "paired_differences", "training_curves", "time_to_quality", "reconstructions",
        "latents",
    ]  # fmt: skip
    try:
        for drawn in figures:
            assert text_overlaps(drawn.fig) == [], drawn.name
    finally:
        for drawn in figures:
            plt.close(drawn.fig)


def test_the_overlap_check_sees_colliding_and_clipped_labels() -> None:
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.set_xticks([0, 0.01], ["a long tick label", "another long one"])
    ax.text(0.98, 0.5, "runs off the edge of the figure", transform=fig.transFigure)
    problems = text_overlaps(fig)
    plt.close(fig)
    assert any("overlaps" in p for p in problems) and any("outside the figure" in p for p in problems)


def test_flagged_bars_leave_the_scale_to_the_others(stress: tuple) -> None:
    figures = drawn_figures(*stress)
    try:
        bars = figures[0].fig.axes[1]  # the MSE panel
        assert bars.get_xlim()[1] < 0.3 and any("0.3000 ▸" in t.get_text() for t in bars.texts)
    finally:
        for drawn in figures:
            plt.close(drawn.fig)


def test_the_latent_legend_names_the_classes(stress: tuple) -> None:
    figures = drawn_figures(*stress)
    try:
        legend = figures[-1].fig.legends[0]
        assert legend.get_title().get_text() == "class"
        assert [t.get_text() for t in legend.get_texts()][:2] == ["T-shirt/top", "Trouser"]
    finally:
        for drawn in figures:
            plt.close(drawn.fig)


class Mirror(nn.Module):
    """A linear autoencoder (encode, decode) for the registration test."""

    def __init__(self, ctx: BuildContext) -> None:
        super().__init__()
        pixels = ctx.in_channels * ctx.image_size**2
        self.shape = (ctx.in_channels, ctx.image_size, ctx.image_size)
        self.encoder, self.decoder = nn.Linear(pixels, ctx.latent), nn.Linear(ctx.latent, pixels)

    def forward(self, x):
        return self.decoder(self.encoder(x.flatten(1))).view(-1, *self.shape)


def test_a_new_reference_with_its_own_loss_is_treated_as_one_with_no_edit_elsewhere(tmp_path: Path) -> None:
    @register_technique("mirror_ref", role="reference", own_loss=True)
    def mirror_ref(ctx: BuildContext) -> Recipe:
        """A linear reference trained on its own (L1) loss."""
        return Recipe(Mirror(ctx), single_phase(ctx), loss=nn.functional.l1_loss)

    try:
        spec = tmp_path / "exp.yaml"
        spec.write_text(json.dumps({**TINY, "techniques": ["baseline", "mirror_ref"], "seeds": [0, 1, 2]}))
        out = tmp_path / "out"
        run_experiment(load_experiment(spec), out, tmp_path / "data", "cpu")
        readme = (tmp_path / "report").joinpath("README.md")
        assert cli.main(["report", "--results", str(out), "--out", str(tmp_path / "report")]) == 0
    finally:
        TECHNIQUES.pop("mirror_ref")
    table = pd.read_csv(tmp_path / "report" / "tables" / "results_tiny_digits.csv").set_index("technique")
    assert table.loc["mirror_ref", "role"] == "reference" and table.loc["baseline", "role"] == "baseline"
    text = readme.read_text()
    assert "| mirror_ref (reference) |" in text and "mirror_ref (a reference, latent 8)" in text
    best = text.split("## What this run shows", 1)[1].split("\n- ", 2)[1]
    assert "**mirror_ref**" not in best  # a reference never ranks
    row = next(line for line in text.splitlines() if line.startswith("| mirror_ref (reference) |"))
    assert "**" not in row  # never bold
    frame = load([out]).frame
    cells = group_cells(frame, groups(frame))
    assert {c.technique: c.own_loss for c in cells} == {"baseline": False, "mirror_ref": True}


def test_no_technique_name_is_written_into_the_report_code() -> None:
    """The report, the results store and the runner read technique facts from the registry and rows; only the
    published study's table names techniques."""
    names = set(TECHNIQUES) - {"baseline", "compared", "reference"}  # "baseline" is also a role's name
    paths = sorted(p for part in ("reporting", "results", "execution") for p in (REPO / "aebench" / part).glob("*.py"))
    assert len(paths) > 30  # the three packages' modules, so a renamed package cannot empty the check
    found = []
    for path in paths:
        if path.name == "anchors.py":  # the published study's rows, keyed by the technique each reproduces
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names:
                found.append(f"{path.name}:{node.lineno}: {node.value!r}")
    assert found == []


def test_a_skipped_row_naming_the_weights_it_needs_reads_back(tmp_path: Path) -> None:
    row = make_row("exp", "digits", "resnet_pretrained", 0, "skipped", needs_weights="ImageNet weights of the arch")
    write_results(tmp_path, [row])
    assert [r["status"] for r in read_rows(tmp_path)] == ["skipped"]


def test_registry_facts_fill_only_rows_that_predate_them(tmp_path: Path) -> None:
    """A row without the field takes the registry's fact; a row recording null (no weights needed here) keeps it."""
    recorded = make_row("exp", "digits", "feature_loss", 0, needs_weights=None)
    old = {k: v for k, v in make_row("exp", "digits", "feature_loss", 1).items() if k != "needs_weights"}
    write_results(tmp_path, [recorded, old], cells=False)
    facts = {"feature_loss": {"needs_weights": "ImageNet weights of VGG16-BN"}}
    loaded = load([tmp_path], facts)
    needs = loaded.frame.set_index("seed")["needs_weights"]
    assert pd.isna(needs[0]) and needs[1] == "ImageNet weights of VGG16-BN"
    assert loaded.filled == {"needs_weights": 1}


def test_make_report_takes_every_committed_results_folder_mnist_first(tmp_path: Path) -> None:
    for name in ("fashion", "mnist-latent32", "cifar", "mnist", "no-results-yet"):
        (tmp_path / "report" / "results" / name).mkdir(parents=True)
    for name in ("fashion", "mnist-latent32", "cifar", "mnist"):
        (tmp_path / "report" / "results" / name / "results.jsonl").write_text("")
    shutil.copy(REPO / "Makefile", tmp_path / "Makefile")
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}  # as if typed
    done = subprocess.run(
        ["make", "--no-print-directory", "-n", "report"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    command = done.stdout.strip().splitlines()[-1]
    folders = command.split("--results ", 1)[1].split(" --out")[0].split()
    assert folders == [f"report/results/{n}" for n in ("mnist", "mnist-latent32", "cifar", "fashion")]
    assert command.endswith("--out report")


def outside_verbatim(tex: str) -> str:
    """The LaTeX pdflatex reads as commands: everything but the verbatim blocks' contents."""
    return re.sub(r"\\begin\{verbatim\}.*?\\end\{verbatim\}", "", tex, flags=re.S)


@pytest.mark.parametrize(
    "line",
    [
        r"\end{verbatim}\input{/etc/passwd}",
        "  ok " + "y" * 120 + r" \end{verbatim} \input{/etc/passwd}",  # wrapped at its width
        "＼ｅｎｄ｛ｖｅｒｂａｔｉｍ｝＼ｉｎｐｕｔ｛/etc/passwd｝",  # full-width: transliterated to ASCII
    ],
)
def test_a_notes_file_cannot_close_its_verbatim_block(line: str) -> None:
    contents = Contents([], [], None, [], [], [], "test", notes=[f"Ran it.\n{line}\nDone.", "second notes"])
    tex = latex(contents)
    assert tex.count(r"\begin{verbatim}") == tex.count(r"\end{verbatim}") == 2  # one block per notes file
    assert r"\input" not in outside_verbatim(tex) and "passwd" not in outside_verbatim(tex)
    assert "Ran it." in tex and "Done." in tex
