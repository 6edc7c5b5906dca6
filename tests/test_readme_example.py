"""The README's "add a technique" example is real code: it registers a technique that trains through the runner."""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
from pathlib import Path

import pandas as pd
import pytest
from helpers import REPO, TINY

from aebench.data.registry import get_dataset
from aebench.execution.runner import run_experiment
from aebench.experiment import parse_experiment
from aebench.reporting.flags import technique_flags
from aebench.techniques import TECHNIQUES

MARKER = "<!-- example: add a technique -->"


def readme_example() -> str:
    text = (REPO / "README.md").read_text()
    match = re.search(re.escape(MARKER) + r"\s*```python\n(.*?)```", text, flags=re.S)
    assert match, f"README.md lost its example after {MARKER}"
    return match.group(1)


def test_the_readme_technique_registers_and_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module_file = tmp_path / "linear_ae.py"
    module_file.write_text(readme_example())
    spec = importlib.util.spec_from_file_location("linear_ae_example", module_file)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # as an import would: dataclasses look their module up
    try:
        spec.loader.exec_module(module)
        assert TECHNIQUES["linear_ae"].description.startswith("One Linear layer")
        config = parse_experiment(
            {**TINY, "techniques": ["linear_ae", "pca"], "overrides": {"linear_ae": {"bias": False}}}, "x"
        )
        rows = run_experiment(config, tmp_path / "out", Path("/nonexistent"), "cpu")
    finally:
        TECHNIQUES.pop("linear_ae", None)  # leave the registry as the other tests expect it
    by_technique = {r["technique"]: r for r in rows}
    assert by_technique["linear_ae"]["status"] == "ok", by_technique["linear_ae"]["reason"]
    assert 0 < by_technique["linear_ae"]["mse"] < 1
    assert by_technique["linear_ae"]["params"] == 2 * 64 * TINY["model"]["latent"]  # two bias-free 64 x 8 layers


def test_the_readme_states_the_pca_rank_and_verdict_the_report_computes() -> None:
    """make bench-offline's note on PCA at latent 1000: the rank bound of one native Fashion-MNIST image (what
    the report's lossless flag uses), and the flag's word."""
    text = " ".join((REPO / "README.md").read_text().split())
    said = re.search(r"at latent (\d+) PCA is (\w+), since the data's rank is at most (\d+)", text)
    assert said, "README.md lost its sentence on PCA at latent 1000 under make bench-offline"
    side, grey = re.search(r"(\d+)x\1 grey", get_dataset("fashion-mnist").description).group(1, 0)
    native = int(side) ** 2
    assert int(said.group(3)) == native, f"README says rank <= {said.group(3)}; one native {grey} image: {native}"
    rows = pd.DataFrame({"role": ["reference"], "latent": [int(said.group(1))], "native_pixels": [native],
                         "mse": [1e-3], "mse_mean_image": [0.1], "output_spread": [1.0], "accuracy": [0.9],
                         "accuracy_clean": [0.9], "seed": [0]})  # fmt: skip
    found = technique_flags("t", "pca", rows, 0.1, "10 classes")
    assert said.group(2) in [f["label"] for f in found]


def test_the_readme_technique_imports_torch_only_inside_its_builder() -> None:
    """Every technique module is imported to list techniques: a top-level torch import would slow ``list``."""
    top = [n for n in ast.parse(readme_example()).body if isinstance(n, ast.Import | ast.ImportFrom)]
    names = [a.name for n in top if isinstance(n, ast.Import) for a in n.names]
    names += [n.module or "" for n in top if isinstance(n, ast.ImportFrom)]
    heavy = [name for name in names if name.split(".")[0] == "torch" or name.startswith("aebench.models")]
    assert names and heavy == []
