"""External services fail fast: a tracker server or Ray cluster that does not answer stops the run in seconds,
before the results folder is locked, any data loads or any cell trains (their own clients retry for minutes)."""

from __future__ import annotations

import urllib.parse

from aebench.errors import UserError
from aebench.hub.network import connect_error

SERVICE_TIMEOUT = 5.0  # seconds a tracker or Ray address has to accept a connection


def require_reachable(address: str, flag: str, default_port: int) -> None:
    """A UserError naming ``flag`` unless ``address`` (``HOST:PORT`` or a URL) accepts a TCP connection within
    ``SERVICE_TIMEOUT`` seconds: a service that is down fails the run at once instead of after its client's retries."""
    parts = urllib.parse.urlsplit(address if "://" in address else f"tcp://{address}")
    try:
        host, port = parts.hostname, parts.port or default_port
    except ValueError:  # a port that is not a number in 0..65535
        raise UserError(f"{flag}: {address!r} has no valid port") from None
    if not host:
        raise UserError(f"{flag}: {address!r} names no host")
    exc = connect_error(host, port, SERVICE_TIMEOUT)
    if exc is not None:
        why = exc.strerror or str(exc) or type(exc).__name__
        raise UserError(
            f"{flag}: nothing answers at {host}:{port} within {SERVICE_TIMEOUT:g} s ({why}); start it or fix the address"
        )
