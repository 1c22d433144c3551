"""Who may call a route: the declaration (for the document) and its check (for the server)."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from control.appkeys import SETTINGS_KEY
from control.errors import ApiError

Check = Callable[[web.Request], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class SecurityScheme:
    """One way to prove who you are; `definition` is its OpenAPI security scheme object."""

    name: str
    definition: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Security:
    """Any one of `schemes` admits a request; none at all makes a route public.

    `check` runs before the path, query and body are read and raises ApiError (401/403);
    `errors` are the statuses it can answer besides 401, for the document.
    """

    schemes: tuple[SecurityScheme, ...]
    check: Check | None
    errors: Mapping[int, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if bool(self.schemes) != (self.check is not None):
            raise ValueError("a route with security schemes needs a check, a public one none")

    @property
    def public(self) -> bool:
        return not self.schemes


def bearer_token(request: web.Request) -> str:
    """The token of ``Authorization: Bearer <token>``; empty when there is none."""
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return given.strip() if scheme.lower() == "bearer" else ""


def is_api_key(request: web.Request, token: str) -> bool:
    expected = request.app[SETTINGS_KEY].api_key.encode("utf-8")
    return bool(token) and hmac.compare_digest(token.encode("utf-8"), expected)


def unauthorized(message: str) -> ApiError:
    return ApiError(
        401, "unauthorized", message, headers={"WWW-Authenticate": 'Bearer realm="balie"'}
    )


async def _require_api_key(request: web.Request) -> None:
    if not is_api_key(request, bearer_token(request)):
        raise unauthorized("a valid API key is required: Authorization: Bearer <key>")


API_KEY_SCHEME = SecurityScheme(
    "bearerAuth",
    {
        "type": "http",
        "scheme": "bearer",
        "description": "The API key from BALIE_API_KEY or <data dir>/secrets/api_key.",
    },
)

PUBLIC = Security((), None)
API_KEY = Security((API_KEY_SCHEME,), _require_api_key)
