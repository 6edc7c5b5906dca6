"""Whether the network is there: a host that answers, or the user's request to stay offline (no torch here)."""

from __future__ import annotations

import os
import socket
import urllib.parse


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
