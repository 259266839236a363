"""Start the dashboard: refuse unsafe or impossible binds first, then run uvicorn."""

from __future__ import annotations

import ipaddress
import logging
import re
import secrets
import socket
from dataclasses import dataclass
from urllib.parse import quote

from joulebench import api
from joulebench.errors import ConfigError

log = logging.getLogger(__name__)
LOOPBACK_NAMES = frozenset({"localhost", "ip6-localhost"})
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]+")  # what secrets.token_urlsafe makes


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def new_token() -> str:
    return secrets.token_urlsafe(24)


@dataclass(frozen=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8765
    token: str | None = None  # None: no token (only on loopback)
    use_sacct: bool = True


def check_bind(host: str, port: int, token: str | None) -> None:
    """Refuse, before binding: no token off loopback, a port already taken."""
    if token is None and not is_loopback(host):
        raise ConfigError(
            f"--host {host} with --no-token would let anyone who can reach this "
            "machine read your results; drop --no-token (a token is required "
            "off 127.0.0.1)"
        )
    if token is not None and len(token) < 8:
        raise ConfigError(
            "--token (or JOULEBENCH_TOKEN): at least 8 characters; leave it out for a random one"
        )
    if token is not None and not TOKEN_PATTERN.fullmatch(token):
        # It travels in URLs, a cookie and a header: other characters would need quoting
        # in each and could break the cookie.
        raise ConfigError(
            "--token (or JOULEBENCH_TOKEN): only letters, digits, '_' and '-'; "
            "leave it out for a random one"
        )
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ConfigError(
                f"--host {host} --port {port}: cannot listen there "
                f"({exc.strerror}); pick another with --port"
            ) from None


def url(options: ServeOptions) -> str:
    shown = f"[{options.host}]" if ":" in options.host else options.host
    base = f"http://{shown}:{options.port}/"
    return f"{base}?token={quote(options.token, safe='')}" if options.token else base


def serve(paths: api.Paths, options: ServeOptions) -> None:
    """Run until Ctrl-C (uvicorn handles the signal and shuts down cleanly)."""
    import uvicorn

    from joulebench.serve.app import build_app

    app = build_app(paths, options.token, use_sacct=options.use_sacct, host=options.host)
    config = uvicorn.Config(
        app,
        host=options.host,
        port=options.port,
        log_level="warning",
        access_log=False,
        lifespan="off",
    )
    try:
        uvicorn.Server(config).run()
    except KeyboardInterrupt:
        # uvicorn shuts down cleanly, then re-raises the Ctrl-C it caught: for a server
        # that runs "until Ctrl-C" that is the normal end, not an interrupted run.
        log.info("serve: stopped by Ctrl-C")
