"""Whether the network is there: a host that answers, or the user's request to stay offline (no torch here)."""

from __future__ import annotations

import os
import socket
import urllib.parse
from pathlib import Path

HUB_FILES = ("model.safetensors", "pytorch_model.bin")  # the weight files of a timm repository on the hub


def host_reachable(url: str, timeout: float = 3.0) -> bool:
    """Whether a TCP connection to the URL's host opens within ``timeout`` seconds."""
    parts = urllib.parse.urlparse(url)
    return connect_error(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80), timeout) is None


def connect_error(host: str | None, port: int, timeout: float) -> OSError | None:
    """Why a TCP connection to ``host:port`` does not open within ``timeout`` seconds, or None when it does."""
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        return exc
    return None


def hub_offline() -> bool:
    """Whether the user asked Hugging Face libraries to stay offline."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def timm_weights_missing(name: str) -> str | None:
    """Why timm model ``name``'s pretrained weights could not be had now, finding out without downloading (and
    without torch or timm): not in the Hugging Face cache, and the hub offline or unreachable. None: cached, or
    the hub answers. A name without a tag (``vgg16_bn``) counts any cached tag of it."""
    from huggingface_hub import constants

    repos = Path(constants.HF_HUB_CACHE).glob(f"models--timm--{name}{'' if '.' in name else '.*'}")
    if any(any(repo.glob(f"snapshots/*/{f}")) for repo in repos for f in HUB_FILES):
        return None
    if hub_offline():
        return f"pretrained weights timm/{name} are not cached and HF_HUB_OFFLINE is set"
    if not host_reachable(constants.ENDPOINT):
        return f"pretrained weights timm/{name} are not cached and {constants.ENDPOINT} is unreachable"
    return None
