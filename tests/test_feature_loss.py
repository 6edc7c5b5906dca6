"""Feature loss: Gram normalisation, the loss formula and layer choice on tiny tensors, grey input, the trained net."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from helpers import built, tiny_cell
from torch import nn

from aebench.config import build
from aebench.hub.weights import timm_body
from aebench.models.feature_nets import SmallVGG
from aebench.techniques.feature_loss import FeatureLossParams
from aebench.training.feature_loss import FeatureLoss, gram
from aebench.training.recipe import LabelledImages


class Recorder(nn.Module):
    """A 'feature network' returning its input as the only feature map, remembering what it saw."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        self.seen.append(x)
        return [x]


class ListOf(nn.Module):
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [self.inner(x)]


def test_gram_is_divided_by_channels_times_pixels() -> None:
    x = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])  # N=1, C=2, H=1, W=2
    # channel rows (1, 2) and (3, 4): dot products 5, 11, 25; divided by c*h*w = 4
    assert torch.equal(gram(x), torch.tensor([[[5.0, 11.0], [11.0, 25.0]]]) / 4)


def test_loss_adds_weighted_feature_and_gram_terms() -> None:
    pred, target = torch.zeros(1, 1, 1, 2), torch.ones(1, 1, 1, 2)
    loss = FeatureLoss(Recorder(), [2.0], gram_weight=3.0, pixel=F.mse_loss, net_channels=1)
    # pixel MSE 1; feature MSE 1 (weight 2); Gram 0 vs (1+1)/2 = 1, MSE 1 (weight 2^2 * 3 = 12)
    assert loss(pred, target).item() == pytest.approx(1 + 2 + 12)


def test_grey_images_are_repeated_and_normalised_only_on_request() -> None:
    net = Recorder()
    x = torch.rand(2, 1, 4, 4)
    FeatureLoss(net, [1.0], 1.0, F.mse_loss, net_channels=3)(x, x)
    assert net.seen[0].shape == (2, 3, 4, 4) and torch.equal(net.seen[0][:, 2], x[:, 0])  # [0,1] pixels, as the study
    FeatureLoss(net, [1.0], 1.0, F.mse_loss, 3, mean=[0.5, 0.5, 0.5], std=[0.25, 0.25, 0.25])(x, x)
    assert torch.allclose(net.seen[-1][:, 1], (x[:, 0] - 0.5) / 0.25)


def test_gradient_reaches_the_reconstruction_but_not_the_feature_net() -> None:
    net = nn.Conv2d(3, 4, 3)
    loss = FeatureLoss(ListOf(net), [1.0], 1.0, F.mse_loss, 3)
    pred = torch.rand(2, 3, 6, 6, requires_grad=True)
    loss(pred, torch.rand(2, 3, 6, 6)).backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0
    assert net.weight.grad is None and not loss.train().net.training


@pytest.mark.parametrize(
    ("net", "arch", "expected"),
    [
        ("vgg16_bn", "vgg16_bn.tv_in1k", [(64, 32), (128, 16), (256, 8)]),  # just before the first three max-pools
        ("resnet18", "resnet18.tv_in1k", [(64, 16), (64, 8), (128, 4)]),  # stem, layer1, layer2
    ],
)
def test_feature_layers(net: str, arch: str, expected: list[tuple[int, int]], tmp_path: Path) -> None:
    torch.save(timm_body(arch, [0, 1, 2], 3, False, None, "").state_dict(), tmp_path / "w.pth")
    params = build(FeatureLossParams, {"feature_net": net, "weights": str(tmp_path / "w.pth")}, "p", "test")
    recipe = built(tiny_cell("feature_loss", params), (1, 32))
    features = recipe.loss.features(torch.rand(2, 1, 32, 32))
    assert [(f.shape[1], f.shape[-1]) for f in features] == expected


def test_trained_feature_net_learns_from_labels_then_freezes() -> None:
    params = build(FeatureLossParams, {"feature_net": "trained", "trained_epochs": 2}, "p", "test")
    recipe = built(tiny_cell("feature_loss", params, batch_size=16), (1, 8))
    net = recipe.loss.net
    assert isinstance(net, SmallVGG)
    before = [p.clone() for p in net.parameters()]
    images = torch.randint(0, 256, (48, 1, 8, 8), dtype=torch.uint8)
    recipe.prepare(LabelledImages(images, (images.float().mean((1, 2, 3)) > 127).long(), 2), 0)
    assert any(not torch.equal(a, b) for a, b in zip(before, net.parameters()))
    assert not net.training and not any(p.requires_grad for p in net.parameters())


def test_trained_feature_net_takes_no_weights_file() -> None:
    from aebench.errors import UserError

    with pytest.raises(UserError, match="learns its own weights"):
        build(FeatureLossParams, {"feature_net": "trained", "weights": "/x.pth"}, "p", "test")


class TwoLayers(nn.Module):
    """A 'feature network' whose two feature maps are the input and its double."""

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [x, 2 * x]


def unweighted(loss: FeatureLoss, pred: torch.Tensor, target: torch.Tensor) -> list[float]:
    return [float(t) for t in loss.terms(pred, target)]


def test_auto_scale_starts_pixel_feature_and_gram_terms_at_one_each() -> None:
    pred, target = torch.rand(2, 1, 4, 4), torch.rand(2, 1, 4, 4)
    auto = FeatureLoss(TwoLayers(), [30.0, 10.0], 5e3, F.mse_loss, 1, term_scale="auto")
    assert auto(pred, target).item() == pytest.approx(3.0)  # pixel 1 + features 1 + Gram 1
    no_gram = FeatureLoss(TwoLayers(), [30.0, 10.0], 0.0, F.mse_loss, 1, term_scale="auto")
    assert no_gram(pred, target).item() == pytest.approx(2.0)


def test_auto_scale_keeps_the_first_step_scales_and_the_relative_layer_weights() -> None:
    first, later = (torch.rand(2, 1, 4, 4), torch.rand(2, 1, 4, 4)), (torch.rand(2, 1, 4, 4), torch.rand(2, 1, 4, 4))
    loss = FeatureLoss(TwoLayers(), [30.0, 10.0], 5e3, F.mse_loss, 1, term_scale="auto")
    loss(*first)
    p0, f1, g1, f2, g2 = unweighted(loss, *first)
    p, a1, b1, a2, b2 = unweighted(loss, *later)
    expected = p / p0 + 0.75 * a1 / f1 + 0.25 * a2 / f2 + 0.9 * b1 / g1 + 0.1 * b2 / g2  # 30:10 and 900:100
    assert loss(*later).item() == pytest.approx(expected, rel=1e-5)
    assert loss.measured() == pytest.approx(
        {"first_step_pixel": p0, "first_step_feature1": f1, "first_step_gram1": g1,
         "first_step_feature2": f2, "first_step_gram2": g2}
    )  # fmt: skip


def test_raw_weights_record_the_first_step_terms_without_using_them() -> None:
    pred, target = torch.zeros(1, 1, 1, 2), torch.ones(1, 1, 1, 2)
    loss = FeatureLoss(Recorder(), [2.0], gram_weight=3.0, pixel=F.mse_loss, net_channels=1)
    assert loss(pred, target).item() == pytest.approx(1 + 2 + 12)
    assert loss.measured() == {"first_step_pixel": 1.0, "first_step_feature1": 1.0, "first_step_gram1": 1.0}
    assert loss(pred, 3 * target).item() == pytest.approx(9 + 2 * 9 + 12 * 81)  # still the raw weights


def test_the_calibration_travels_with_the_state_dict() -> None:
    pred, target = torch.rand(2, 1, 4, 4), torch.rand(2, 1, 4, 4)
    loss = FeatureLoss(TwoLayers(), [30.0, 10.0], 5e3, F.mse_loss, 1, term_scale="auto")
    loss(pred, target)
    restored = FeatureLoss(TwoLayers(), [30.0, 10.0], 5e3, F.mse_loss, 1, term_scale="auto")
    restored.load_state_dict(loss.state_dict())
    later = torch.rand(2, 1, 4, 4)
    assert restored(later, target).item() == pytest.approx(loss(later, target).item())


def test_auto_scale_refuses_a_term_that_is_zero_at_the_first_step() -> None:
    from aebench.errors import CellFailure

    x = torch.rand(2, 1, 4, 4)
    with pytest.raises(CellFailure, match="first_step_pixel"):
        FeatureLoss(TwoLayers(), [1.0, 1.0], 1.0, F.mse_loss, 1, term_scale="auto")(x, x)
