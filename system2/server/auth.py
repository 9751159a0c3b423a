"""API keys: ``Authorization: Bearer KEY`` on every route but ``/health``.

Keys come from ``SYSTEM2_API_KEYS`` (comma-separated) and/or a key file (one key a line;
blank lines and ``#`` comments skipped). A presented key is compared with every configured
key in constant time (``hmac.compare_digest``, no early exit), so the time taken does not
tell how much of a key was right. With no keys configured every route is open (and
``system2 serve`` then refuses a non-loopback address unless told ``--insecure-no-auth``).
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from collections.abc import Iterable
from pathlib import Path

from starlette.types import ASGIApp, Receive, Scope, Send

from system2.server.errors import error_response

__all__ = ["API_KEYS_ENV", "OPEN_PATHS", "ApiKeys", "AuthMiddleware", "is_loopback"]

API_KEYS_ENV = "SYSTEM2_API_KEYS"
OPEN_PATHS = frozenset({"/health"})
"""Paths served without a key (liveness probes)."""


class ApiKeys:
    """The accepted keys (as bytes); falsy when there are none."""

    def __init__(self, keys: Iterable[str] = ()) -> None:
        self._keys = tuple(k.encode() for k in dict.fromkeys(k.strip() for k in keys) if k)

    @classmethod
    def load(
        cls, key_file: Path | None = None, *, environ: dict[str, str] | None = None
    ) -> ApiKeys:
        """Keys from ``SYSTEM2_API_KEYS`` and ``key_file``; a key file that cannot be read,
        or holds no key, is a ``ValueError`` (a typo must not leave the server open)."""
        env = os.environ if environ is None else environ
        keys = env.get(API_KEYS_ENV, "").split(",")
        if key_file is not None:
            try:
                lines = key_file.read_text().splitlines()
            except OSError as exc:
                raise ValueError(f"{key_file}: cannot read API key file: {exc.strerror}") from None
            from_file = [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]
            if not from_file:
                raise ValueError(f"{key_file}: the API key file holds no key")
            keys += from_file
        return cls(keys)

    def __bool__(self) -> bool:
        return bool(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def accepts(self, presented: str) -> bool:
        """Whether ``presented`` is one of the keys (every key is compared)."""
        given = presented.encode()
        matched = False
        for key in self._keys:
            matched |= hmac.compare_digest(given, key)
        return matched


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" else None
    return None


class AuthMiddleware:
    """Refuses HTTP requests without an accepted key with 401 (OpenAI's error shape)."""

    def __init__(self, app: ASGIApp, keys: ApiKeys) -> None:
        self.app, self.keys = app, keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.keys or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        token = _bearer(scope)
        if token is None:
            message = "missing API key: send the header 'Authorization: Bearer <key>'"
        elif not self.keys.accepts(token):
            message = "invalid API key"
        else:
            await self.app(scope, receive, send)
            return
        response = error_response(
            401, message, code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"}
        )
        await response(scope, receive, send)


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
