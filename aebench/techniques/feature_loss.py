"""The baseline trained with a feature (perceptual + Gram) loss on a frozen feature network."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Union

from aebench.config import ConfigError, opt
from aebench.techniques.baseline import conv_autoencoder
from aebench.techniques.registry import Body, Weights, register_technique
from aebench.training.recipe import BuildContext, LabelledImages, Recipe, single_phase

TIMM_FEATURE_NETS = {"vgg16_bn": "vgg16_bn.tv_in1k", "resnet18": "resnet18.tv_in1k"}  # torchvision's ImageNet weights


@dataclass(frozen=True)
class FeatureLossParams:
    """Feature network and weights of ``feature_loss`` (``overrides.feature_loss.*``)."""

    feature_net: Literal["vgg16_bn", "resnet18", "trained"] = opt(
        "vgg16_bn",
        "frozen ImageNet VGG16-BN (the study) or ResNet-18, or a small CNN aebench trains on the training split",
    )
    layer_weights: tuple[float, ...] = opt(
        (30.0, 20.0, 10.0),
        "one weight per feature layer, shallowest first: VGG before each max-pool, ResNet-18 stem/stages",
    )
    gram_weight: float = opt(5e3, "Gram (style) term: sum w_i^2 * gram_weight * MSE(Gram_i)", min=0)
    feature_normalize: Literal["none", "imagenet"] = opt(
        "none", "feature net input: un-normalised [0,1] pixels (the study) or ImageNet-normalised"
    )
    weights: Union[str, None] = opt(
        None, "local state_dict of the feature net; null = timm's hub copy (skipped offline)"
    )
    trained_epochs: int = opt(
        5, "feature_net trained: classifier epochs of the small CNN (counted as training time)", min=1
    )
    term_scale: Literal["none", "auto"] = opt(
        "none",
        "none: the weights above as they are (tuned for VGG16-BN); auto: each term divided by its first-step value, "
        "pixel, feature and Gram terms then start equal, layers keep their relative weights (any feature net)",
        added=True,
    )

    def __post_init__(self) -> None:
        if not self.layer_weights:
            raise ConfigError("overrides.feature_loss.layer_weights must list at least one weight")
        if self.feature_net == "trained" and self.weights:
            raise ConfigError(
                "overrides.feature_loss.weights: the trained feature net learns its own weights; remove the key"
            )


def feature_body(params: FeatureLossParams) -> Body | None:
    """The timm body of an ImageNet feature network and its feature stages, shallowest first (None: trained)."""
    if params.feature_net == "trained":
        return None
    return TIMM_FEATURE_NETS[params.feature_net], list(range(len(params.layer_weights)))


@register_technique(
    "feature_loss",
    params=FeatureLossParams,
    own_loss=True,
    weights=Weights("ImageNet weights of the feature_net", feature_body),
)
def feature_loss(ctx: BuildContext) -> Recipe:
    """Baseline with loss = pixel + weighted VGG16-BN feature MSE + Gram MSE (layers before the first 3 max-pools).

    The first step's unweighted terms go into the row's ``measured`` field; ``term_scale: auto`` calibrates by them.
    """
    from aebench.hub.weights import timm_body
    from aebench.models.feature_nets import SmallVGG
    from aebench.models.resnet import FeatureStages
    from aebench.training.feature_loss import FeatureLoss, imagenet_stats, train_feature_net
    from aebench.training.losses import pixel_loss

    p: FeatureLossParams = ctx.params
    model = conv_autoencoder(ctx)
    if not ctx.load_weights:  # a checkpoint is being restored: the loss network is not needed
        return Recipe(model, single_phase(ctx))
    spec = feature_body(p)
    if spec is None:
        net, channels = SmallVGG(ctx.in_channels, [32 * 2**i for i in range(len(p.layer_weights))]), ctx.in_channels
    else:
        fix = (
            f"download it once online, or set overrides.feature_loss.weights: /path/{p.feature_net}.pth (a state_dict)"
        )
        arch, layers = spec
        net, channels = FeatureStages(timm_body(arch, layers, 3, True, p.weights, fix), layers), 3
    mean, std = imagenet_stats(channels) if p.feature_normalize == "imagenet" else (None, None)
    loss = FeatureLoss(
        net, p.layer_weights, p.gram_weight, pixel_loss(ctx.train.loss), channels, mean, std, p.term_scale
    )

    def prepare(data: LabelledImages, seed: int) -> None:
        train_feature_net(loss, data, seed, p.trained_epochs, ctx.train.batch_size, precision=ctx.train.precision)

    prepared = prepare if p.feature_net == "trained" else None
    return Recipe(model, single_phase(ctx), loss=loss, prepare=prepared, measured=loss.measured)
