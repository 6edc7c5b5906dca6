"""The study's ResNet encoder (concatenated avg+max pool latent) with the baseline decoder: pretrained or from scratch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Union

from aebench.config import ConfigError, opt
from aebench.errors import UserError
from aebench.techniques.registry import Body, Weights, register_technique
from aebench.training.recipe import BuildContext, Phase, Recipe, phase_epochs, single_phase

if TYPE_CHECKING:
    from torch import nn

    from aebench.models.autoencoder import Autoencoder


@dataclass(frozen=True)
class ResNetParams:
    """Encoder body of ``resnet_scratch`` (``overrides.resnet_scratch.*``)."""

    arch: str = opt("resnet34.tv_in1k", "timm architecture of the encoder body (the study: ResNet-34)")


@dataclass(frozen=True)
class PretrainedResNetParams(ResNetParams):
    """Encoder body, weights and phase plan of ``resnet_pretrained`` (``overrides.resnet_pretrained.*``)."""

    weights: Union[str, None] = opt(
        None, "local state_dict (.pth/.safetensors) of arch; null = timm's hub copy (cell skipped when offline)"
    )
    frozen_fraction: float = opt(
        1 / 3, "share of train.epochs with the encoder frozen (the study: 5 of 15); with train.cycles, cycle 1", min=0
    )
    lr_spread: float = opt(1000.0, "unfrozen: encoder stage LRs rise geometrically from lr/lr_spread to lr", min=1)
    decoder_lr_mult: float = opt(
        10.0, "unfrozen: decoder LR = lr * decoder_lr_mult (default: 1e-6...1e-2 at lr 1e-3)", min=0
    )
    train_bn: bool = opt(True, "train the encoder's BatchNorm weights while it is frozen (fastai's default)")
    lr_groups: Literal["stages", "study"] = opt(
        "stages",
        "unfrozen: stages = the body's stages from lr/lr_spread to lr, decoder at lr * decoder_lr_mult; study = the "
        "study's 10 fastai layer groups (conv1, bn1, act1, maxpool, layer1-4, pool, decoder) from lr/lr_spread to "
        "lr, geometric, the decoder at lr (decoder_lr_mult unused)",
        added=True,
    )

    def __post_init__(self) -> None:
        if self.frozen_fraction > 1:
            raise ConfigError(
                f"overrides.resnet_pretrained.frozen_fraction must be at most 1 (got {self.frozen_fraction})"
            )


def encoder_body(params: ResNetParams) -> Body:
    """The timm body of the encoder: the architecture up to its last stage."""
    return params.arch, [-1]


def resnet_autoencoder(ctx: BuildContext, pretrained: bool, weights: str | None = None) -> Autoencoder:
    """timm body up to its last stage -> concat pool latent (2 x channels) -> baseline decoder; grey input
    uses ``in_chans=1`` (a pretrained first conv summed over RGB)."""
    from aebench.hub.weights import timm_body
    from aebench.models.autoencoder import Autoencoder
    from aebench.models.conv import ConvDecoder
    from aebench.models.resnet import ConcatPoolEncoder, FeatureStages

    arch, indices = encoder_body(ctx.params)
    fix = f"download it once online, or set overrides.resnet_pretrained.weights: /path/{arch.split('.')[0]}.pth (a state_dict)"
    body = timm_body(arch, indices, ctx.in_channels, pretrained, weights, fix)
    encoder = ConcatPoolEncoder(FeatureStages(body, indices))
    decoder = ConvDecoder(encoder.latent, ctx.in_channels, ctx.image_size, study=ctx.layers == "study")
    return Autoencoder(encoder, decoder)


def encoder_stages(model: Autoencoder) -> list[list[nn.Parameter]]:
    """The body's parameters by stage (timm's coarse group matcher: stem, then each stage), shallowest first."""
    from timm.models import group_parameters

    net = model.encoder.body.net
    params = dict(net.named_parameters())
    groups = group_parameters(net, net.group_matcher(coarse=True))
    return [[params[name] for name in groups[key]] for key in sorted(groups)]


def frozen_groups(train_bn: bool) -> Any:
    """Optimizer groups with the encoder frozen: the decoder (and the encoder's BatchNorm weights) at lr."""

    def groups(model: nn.Module, lr: float) -> list[dict[str, Any]]:
        from torch import nn

        norms = [
            p for m in model.encoder.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) for p in m.parameters()
        ]
        return [{"params": list(model.decoder.parameters()) + (norms if train_bn else []), "lr": lr}]

    return groups


STUDY_SPLIT = ("conv1", "bn1", "act1", "maxpool", "layer1", "layer2", "layer3", "layer4")  # then pool, decoder


def study_groups(spread: float) -> Any:
    """The study's ``learn.split`` for the unfrozen phase: the ResNet's children, the pool and the decoder as 10
    groups whose LRs rise geometrically from lr/spread to lr (fastai's ``slice(lr/spread, lr)``); groups without
    parameters keep their place in the spacing."""

    def groups(model: nn.Module, lr: float) -> list[dict[str, Any]]:
        net = model.encoder.body.net
        missing = [name for name in STUDY_SPLIT if not hasattr(net, name)]
        if missing:
            raise UserError(f"lr_groups: study needs a torchvision-style ResNet body (no '{missing[0]}' in it)")
        parts = [list(getattr(net, name).parameters()) for name in STUDY_SPLIT]
        parts += [[], list(model.decoder.parameters())]  # the concat pool has no parameters
        last = len(parts) - 1
        return [{"params": ps, "lr": lr / spread ** ((last - i) / last)} for i, ps in enumerate(parts)]

    return groups


def discriminative_groups(spread: float, decoder_mult: float) -> Any:
    """Optimizer groups for the unfrozen phase: encoder stages from lr/spread up to lr, decoder at lr * decoder_mult."""

    def groups(model: nn.Module, lr: float) -> list[dict[str, Any]]:
        stages = encoder_stages(model)
        steps = max(len(stages) - 1, 1)
        encoder = [{"params": ps, "lr": lr / spread ** ((steps - i) / steps)} for i, ps in enumerate(stages)]
        return [*encoder, {"params": list(model.decoder.parameters()), "lr": lr * decoder_mult}]

    return groups


@register_technique(
    "resnet_pretrained", params=PretrainedResNetParams, weights=Weights("ImageNet weights of the arch", encoder_body)
)
def resnet_pretrained(ctx: BuildContext) -> Recipe:
    """ImageNet ResNet-34 encoder (concat pool latent 1024) + baseline decoder; frozen 1/3, then discriminative LRs."""
    p: PretrainedResNetParams = ctx.params
    model = resnet_autoencoder(ctx, pretrained=ctx.load_weights, weights=p.weights)
    frozen, unfrozen = phase_epochs(ctx.train, [p.frozen_fraction])
    unfrozen_groups = (
        study_groups(p.lr_spread) if p.lr_groups == "study" else discriminative_groups(p.lr_spread, p.decoder_lr_mult)
    )
    phases = [
        Phase("frozen", frozen, param_groups=frozen_groups(p.train_bn)),
        Phase("unfrozen", unfrozen, param_groups=unfrozen_groups),
    ]
    return Recipe(model, [phase for phase in phases if phase.epochs > 0])


@register_technique("resnet_scratch", params=ResNetParams)
def resnet_scratch(ctx: BuildContext) -> Recipe:
    """The resnet_pretrained network from random init, all layers trained at one LR in one phase."""
    return Recipe(resnet_autoencoder(ctx, pretrained=False), single_phase(ctx))
