"""External services fail fast: a tracker server or Ray cluster that does not answer stops the run in seconds,
before the results folder is locked, any data loads or any cell trains (their own clients retry for minutes)."""

from __future__ import annotations

import socket
import ssl
import time
import urllib.parse

from aebench.errors import UserError

SERVICE_TIMEOUT = 5.0  # seconds a tracker or Ray address has to accept a connection (and a tracker to answer)
HEALTH_PATH = "/health"  # what MLflow's tracking server answers "OK" at
STATUS_LINE = 4096  # bytes read of the answer: its status line is all that is checked


def host_port(address: str, flag: str, default_port: int) -> tuple[str, int]:
    """The host and port of ``address`` (``HOST:PORT`` or a URL); a UserError naming ``flag`` when it has none."""
    parts = urllib.parse.urlsplit(address if "://" in address else f"tcp://{address}")
    try:
        host, port = parts.hostname, parts.port or default_port
    except ValueError:  # a port that is not a number in 0..65535
        raise UserError(f"{flag}: {address!r} has no valid port") from None
    if not host:
        raise UserError(f"{flag}: {address!r} names no host")
    return host, port


def connect(host: str, port: int, flag: str) -> socket.socket:
    """A socket connected to ``host:port``, or a UserError naming ``flag`` when none opens within
    ``SERVICE_TIMEOUT`` seconds."""
    try:
        return socket.create_connection((host, port), timeout=SERVICE_TIMEOUT)
    except OSError as exc:
        why = exc.strerror or str(exc) or type(exc).__name__
        raise UserError(
            f"{flag}: nothing answers at {host}:{port} within {SERVICE_TIMEOUT:g} s ({why}); start it or fix the address"
        ) from None


def require_reachable(address: str, flag: str, default_port: int) -> None:
    """A UserError naming ``flag`` unless ``address`` accepts a TCP connection within ``SERVICE_TIMEOUT`` seconds:
    a service that is down fails the run at once instead of after its client's retries."""
    connect(*host_port(address, flag, default_port), flag).close()


def require_http_answer(url: str, flag: str) -> None:
    """A UserError naming ``flag`` unless the HTTP(S) server at ``url`` answers ``GET <url path>/health`` (MLflow's
    health check) with an HTTP status line, of any status, within ``SERVICE_TIMEOUT`` seconds in all (connecting,
    a TLS handshake, the answer): a port that accepts connections but never answers (a hung server, another kind
    of service) fails here in seconds instead of after the tracking client's retries."""
    parts = urllib.parse.urlsplit(url)
    deadline = time.monotonic() + SERVICE_TIMEOUT
    host, port = host_port(url, flag, 443 if parts.scheme == "https" else 80)
    path = urllib.parse.quote(parts.path.rstrip("/") + HEALTH_PATH, safe="/%:@!$&'()*+,;=-._~")
    request = f"GET {path} HTTP/1.0\r\nHost: {parts.netloc.rpartition('@')[2]}\r\nConnection: close\r\n\r\n"
    answer = b""
    try:
        with connect(host, port, flag) as raw:
            raw.settimeout(max(deadline - time.monotonic(), 1e-3))
            with tls(raw, host) if parts.scheme == "https" else raw as conn:
                conn.sendall(request.encode("ascii"))
                while b"\n" not in answer and len(answer) < STATUS_LINE:
                    conn.settimeout(max(deadline - time.monotonic(), 1e-3))
                    chunk = conn.recv(STATUS_LINE)
                    if not chunk:
                        break
                    answer += chunk
    except UserError:
        raise
    except OSError as exc:  # a timeout, a reset, a failed TLS handshake
        why = exc.strerror or str(exc) or type(exc).__name__
        raise UserError(
            f"{flag}: {host}:{port} accepts a connection but gives no HTTP answer within {SERVICE_TIMEOUT:g} s "
            f"({why}); is an MLflow server running there?"
        ) from None
    if not answer.startswith(b"HTTP/"):
        raise UserError(
            f"{flag}: {host}:{port} answers, but not in HTTP ({answer[:40]!r}); is an MLflow server running there?"
        )


def tls(raw: socket.socket, host: str) -> ssl.SSLSocket:
    """``raw`` after a TLS handshake (under its timeout) that checks no certificate: only the health request goes
    through it, and the tracking client verifies the server as it is configured to."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    return context.wrap_socket(raw, server_hostname=host)
