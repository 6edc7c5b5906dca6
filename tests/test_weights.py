"""Pretrained weights: local files loaded strictly, offline runs skipped fast and recorded, never random."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch

from aebench.errors import SkipCell, UserError
from aebench.hub.weights import read_state_dict, timm_body

ARCH = "resnet18.tv_in1k"  # small and quick to build; the loading path is the same as ResNet-34's


@pytest.fixture(scope="module")
def state() -> dict[str, torch.Tensor]:
    return timm_body(ARCH, [-1], 3, False, None, "").state_dict()


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_local_file_loads_every_tensor(state: dict[str, torch.Tensor], tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"w{suffix}"
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, str(path))
    else:
        torch.save({"state_dict": state}, path)  # a wrapped checkpoint is unwrapped
    net = timm_body(ARCH, [-1], 3, True, str(path), "")
    assert all(torch.equal(v, state[k]) for k, v in net.state_dict().items())


def test_grey_input_sums_the_pretrained_first_conv(state: dict[str, torch.Tensor], tmp_path: Path) -> None:
    torch.save(state, tmp_path / "w.pth")
    net = timm_body(ARCH, [-1], 1, True, str(tmp_path / "w.pth"), "")
    assert torch.allclose(net.conv1.weight, state["conv1.weight"].sum(1, keepdim=True))


def test_weights_of_another_architecture_are_refused(state: dict[str, torch.Tensor], tmp_path: Path) -> None:
    deeper = timm_body("resnet34.tv_in1k", [-1], 3, False, None, "").state_dict()
    torch.save(deeper, tmp_path / "r34.pth")
    with pytest.raises(UserError, match="not in this architecture"):
        timm_body(ARCH, [-1], 3, True, str(tmp_path / "r34.pth"), "")
    torch.save({k: v for k, v in state.items() if not k.startswith("layer4")}, tmp_path / "cut.pth")
    with pytest.raises(UserError, match="missing"):
        timm_body(ARCH, [-1], 3, True, str(tmp_path / "cut.pth"), "")


def test_unreadable_or_absent_files_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not found"):
        read_state_dict(tmp_path / "nope.pth")
    (tmp_path / "junk.pth").write_text("not a checkpoint")
    with pytest.raises(UserError, match="not a zip-format torch file"):
        read_state_dict(tmp_path / "junk.pth")
    (tmp_path / "junk.safetensors").write_text("not a checkpoint")
    with pytest.raises(UserError, match="cannot read"):
        read_state_dict(tmp_path / "junk.safetensors")


def test_offline_without_file_skips_within_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(SkipCell, match="HF_HUB_OFFLINE.*weights: /path"):
        timm_body(ARCH, [-1], 3, True, None, "set overrides.x.weights: /path/resnet18.pth")
    assert time.perf_counter() - start < 5


def test_unreachable_hub_skips_without_trying_to_download(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache", lambda *a, **k: None)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda *a, **k: pytest.fail("download attempted"))
    monkeypatch.setattr("aebench.data.sources.host_reachable", lambda url, timeout=3.0: False)
    with pytest.raises(SkipCell, match="unreachable"):
        timm_body(ARCH, [-1], 3, True, None, "fix")


def test_runner_records_offline_cells_as_skipped(experiment_file, tmp_path: Path) -> None:
    from helpers import TINY

    from aebench.execution.runner import run_experiment
    from aebench.experiment import load_experiment

    pretrained = experiment_file({**TINY, "techniques": ["resnet_pretrained"]}, name="a.yaml")
    study_classifier = experiment_file({**TINY, "classifier": {"model": "resnet34"}}, name="b.yaml")
    for path in (pretrained, study_classifier):
        run_experiment(load_experiment(path), tmp_path / path.stem, tmp_path / "data", "cpu")
        rows = [json.loads(line) for line in (tmp_path / path.stem / "results.jsonl").read_text().splitlines()]
        assert [r["status"] for r in rows] == ["skipped"]
        assert "weights" in rows[0]["reason"] and rows[0]["mse"] is None
