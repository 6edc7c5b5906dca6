"""Pretrained weights: a local state_dict file, or timm's Hugging Face hub copy — never a silent random init.

Offline (``HF_HUB_OFFLINE`` set, or the hub host unreachable) and without a local file or a cached
copy, loading raises :class:`SkipCell` within seconds, saying how to provide the weights.
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import nn

from aebench.errors import SkipCell, UserError
from aebench.files import open_zip, read_bytes
from aebench.hub.network import HUB_FILES, host_reachable, hub_offline

WRAPPER_KEYS = ("state_dict", "model")  # common checkpoint layouts that nest the state_dict
WEIGHTS_LIMIT = 2**32  # bytes a weights file may hold once unpacked (ImageNet ResNet-50: ~100 MB)


def read_state_dict(path: Path, limit: int = WEIGHTS_LIMIT) -> dict[str, torch.Tensor]:
    """A state_dict from a ``.safetensors`` file or a torch zip pickle (``.pth``/``.pt``/``.bin``), tensors only,
    holding at most ``limit`` bytes once unpacked (checked before anything is allocated; else a one-line error)."""
    if not path.is_file():
        raise UserError(f"weights file not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load

            state = load(read_bytes(path, limit, follow=True))  # the header's sizes are checked against the bytes
        else:
            with open_zip(path, limit, follow=True) as fh:  # a file the user named: a link (hub cache) is followed
                state = torch.load(fh, map_location="cpu", weights_only=True)
    except UserError:
        raise
    except zipfile.BadZipFile:
        raise UserError(
            f"{path}: not a zip-format torch file (torch.save since torch 1.6) nor .safetensors; re-save it as either"
        ) from None
    except Exception as exc:  # corrupt file, wrong format: each backend raises its own type
        raise UserError(f"{path}: cannot read weights ({type(exc).__name__}: {exc})") from None
    for key in WRAPPER_KEYS:
        if isinstance(state, Mapping) and isinstance(state.get(key), Mapping):
            state = state[key]
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError(f"{path}: expected a state_dict (a mapping of names to tensors)")
    return dict(state)


def hub_state_dict(repo: str, fix: str) -> dict[str, torch.Tensor]:
    """timm's weights from the Hugging Face hub (the local cache first); SkipCell when they cannot be had."""
    from huggingface_hub import constants, hf_hub_download, try_to_load_from_cache

    for filename in HUB_FILES:
        cached = try_to_load_from_cache(repo, filename)
        if isinstance(cached, str):
            return read_state_dict(Path(cached))
    if hub_offline():
        raise SkipCell(f"pretrained weights {repo} are not cached and HF_HUB_OFFLINE is set; {fix}")
    if not host_reachable(constants.ENDPOINT):
        raise SkipCell(f"pretrained weights {repo}: {constants.ENDPOINT} is unreachable (offline?); {fix}")
    errors = []
    for filename in HUB_FILES:
        try:
            return read_state_dict(Path(hf_hub_download(repo, filename)))
        except Exception as exc:  # missing file variant, network error: try the next, then report all
            errors.append(f"{filename}: {type(exc).__name__}")
    raise SkipCell(f"downloading pretrained weights {repo} failed ({'; '.join(errors)}); {fix}")


def load_strict(
    net: nn.Module,
    state: Mapping[str, torch.Tensor],
    source: str,
    first_conv: str | None = None,
    architecture: set[str] | frozenset[str] = frozenset(),
) -> None:
    """Load every tensor ``net`` holds from ``state``; a UserError names missing, mis-shaped or foreign tensors.

    ``architecture``: the keys of the whole (unpruned) network; other keys under its top-level modules
    are foreign (e.g. a deeper ResNet's extra blocks), keys of the parts pruned away or of modules it
    lacks (another head layout) are ignored. A 3-channel first conv is summed to 1 channel when ``net``
    takes grey images (timm's ``adapt_input_conv``).
    """
    from timm.models import adapt_input_conv

    own = net.state_dict()
    state = dict(state)
    conv_key = f"{first_conv}.weight" if first_conv else None
    if conv_key in own and conv_key in state and state[conv_key].shape[1] != own[conv_key].shape[1]:
        state[conv_key] = adapt_input_conv(own[conv_key].shape[1], state[conv_key])
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    wrong = [
        f"{k} {tuple(state[k].shape)} != {tuple(own[k].shape)}"
        for k in own
        if k in state and state[k].shape != own[k].shape
    ]
    tops = {k.split(".")[0] for k in architecture}
    foreign = [k for k in state if architecture and k not in architecture and k.split(".")[0] in tops]
    if missing or wrong or foreign:
        problems = [f"{len(missing)} missing (e.g. {', '.join(missing[:3])})"] if missing else []
        problems += [f"{len(wrong)} mis-shaped (e.g. {wrong[0]})"] if wrong else []
        problems += [f"{len(foreign)} not in this architecture (e.g. {', '.join(foreign[:3])})"] if foreign else []
        raise UserError(f"{source}: weights do not fit {type(net).__name__}: {'; '.join(problems)}")
    loaded = {k: state.get(k, torch.zeros((), dtype=torch.long)) for k in own}  # absent batch counters start at 0
    net.load_state_dict(loaded, strict=True)


def timm_body(
    name: str, indices: Sequence[int], in_chans: int, pretrained: bool, weights: str | None, fix: str
) -> nn.Module:
    """timm model ``name`` cut after feature stages ``indices`` (head removed).

    ``pretrained``: weights from the ``weights`` file or, if None, timm's hub copy (SkipCell when
    unavailable, with ``fix`` saying how to provide them); otherwise timm's random init.
    """
    import timm

    if not timm.is_model(name):
        raise UserError(f"unknown timm model '{name}' (see timm.list_models())")
    if not pretrained:
        return pruned(timm.create_model(name, pretrained=False, in_chans=in_chans), indices)
    if weights:
        state, source = read_state_dict(Path(weights).expanduser()), weights
    else:
        repo = timm.models.get_pretrained_cfg(name).hf_hub_id
        if not repo:
            raise SkipCell(f"timm has no hub weights for '{name}'; {fix}")
        state, source = hub_state_dict(repo, fix), repo
    with torch.device("meta"):  # every tensor is loaded below, so skip the (slow) random init
        net = timm.create_model(name, pretrained=False, in_chans=in_chans)
        architecture = set(net.state_dict())
        pruned(net, indices)
    if {n for n, _ in net.named_buffers()} - set(net.state_dict()):  # buffers no state_dict restores need an init
        net = pruned(timm.create_model(name, pretrained=False, in_chans=in_chans), indices)
    else:
        net.to_empty(device="cpu")
    load_strict(net, state, source, net.pretrained_cfg.get("first_conv"), architecture)
    return net


def pruned(net: nn.Module, indices: Sequence[int]) -> nn.Module:
    """``net`` with the layers after feature stage ``max(indices)`` and its head removed (timm's pruning)."""
    net.prune_intermediate_layers(list(indices), prune_head=True)
    return net
