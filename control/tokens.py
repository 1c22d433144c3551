"""Join tokens: HS256 JWTs that let one person join one room with one role.

Claims: ``room``, ``sub`` (the identity, never shown to other participants), ``name``, ``role``,
``iat``, ``exp`` and ``aud = "balie-join"``. Only HS256 is accepted.
"""

from __future__ import annotations

import re
import time
import unicodedata
from dataclasses import dataclass
from typing import Any, Final, Literal

import jwt

AUDIENCE: Final = "balie-join"
ALGORITHM: Final = "HS256"

Role = Literal["employee", "resident", "guest"]
ROLES: Final[tuple[Role, ...]] = ("employee", "resident", "guest")

MIN_TTL_SECONDS: Final = 60
MAX_TTL_SECONDS: Final = 86400 * 7
DEFAULT_TTL_SECONDS: Final = 86400

MAX_IDENTITY_LENGTH: Final = 128
MAX_NAME_LENGTH: Final = 80
MAX_TOKEN_LENGTH: Final = 4096
MIN_SECRET_BYTES: Final = 32
# Allowed clock difference between the machine that issued a token and the one checking it.
LEEWAY_SECONDS: Final = 5

ROOM_ID_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")

# Characters that change text direction; they let a name pretend to be something else.
_BIDI_CONTROLS: Final = frozenset(
    "\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


class TokenError(Exception):
    """A join token was rejected. `code` is ``token_expired`` or ``invalid_token``."""

    def __init__(self, code: Literal["token_expired", "invalid_token"], message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class JoinClaims:
    room: str
    identity: str
    name: str
    role: Role
    issued_at: int
    expires_at: int


def is_valid_room_id(value: object) -> bool:
    return isinstance(value, str) and ROOM_ID_RE.fullmatch(value) is not None


def validate_room_id(value: object, field: str = "room") -> str:
    if not isinstance(value, str):
        raise ValueError(f"{field} must be a string")
    if ROOM_ID_RE.fullmatch(value) is None:
        raise ValueError(
            f"{field} must be 1 to 64 letters, digits, '-' or '_', starting with a letter or digit"
        )
    return value


def validate_identity(value: object, field: str = "identity") -> str:
    if not isinstance(value, str):
        raise ValueError(f"{field} must be a string")
    if not 1 <= len(value) <= MAX_IDENTITY_LENGTH or not value.isprintable():
        raise ValueError(f"{field} must be 1 to {MAX_IDENTITY_LENGTH} printable characters")
    return value


def clean_name(value: str) -> str:
    """Drop control and text-direction characters and surrounding white space."""
    kept = (ch for ch in value if unicodedata.category(ch) != "Cc" and ch not in _BIDI_CONTROLS)
    return "".join(kept).strip()


def validate_name(value: object, field: str = "name") -> str:
    """Return the cleaned name; it must be 1 to 80 characters after cleaning."""
    if not isinstance(value, str):
        raise ValueError(f"{field} must be a string")
    cleaned = clean_name(value)
    if not 1 <= len(cleaned) <= MAX_NAME_LENGTH:
        raise ValueError(f"{field} must be 1 to {MAX_NAME_LENGTH} characters")
    return cleaned


def validate_role(value: object, field: str = "role") -> Role:
    if not isinstance(value, str) or value not in ROLES:
        raise ValueError(f"{field} must be one of: {', '.join(ROLES)}")
    return value


def validate_ttl(value: object, field: str = "ttl") -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{field} must be an integer number of seconds")
    if not MIN_TTL_SECONDS <= value <= MAX_TTL_SECONDS:
        raise ValueError(f"{field} must be between {MIN_TTL_SECONDS} and {MAX_TTL_SECONDS} seconds")
    return value


def _key(secret: str | bytes) -> bytes:
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    if len(key) < MIN_SECRET_BYTES:
        raise ValueError(f"token secret must be at least {MIN_SECRET_BYTES} bytes")
    return key


def issue_join_token(
    secret: str | bytes,
    room: str,
    identity: str,
    name: str,
    role: str,
    ttl_seconds: int = DEFAULT_TTL_SECONDS,
    *,
    now: float | None = None,
) -> str:
    """Sign a join token. Raises ValueError (naming the field) for bad input."""
    claims: dict[str, Any] = {
        "room": validate_room_id(room),
        "sub": validate_identity(identity),
        "name": validate_name(name),
        "role": validate_role(role),
    }
    ttl = validate_ttl(ttl_seconds, "ttl_seconds")
    issued_at = int(time.time() if now is None else now)
    claims["iat"] = issued_at
    claims["exp"] = issued_at + ttl
    claims["aud"] = AUDIENCE
    return jwt.encode(claims, _key(secret), algorithm=ALGORITHM)


def verify_join_token(secret: str | bytes, token: object) -> JoinClaims:
    """Check signature, audience, expiry and every claim. Raises TokenError."""
    key = _key(secret)
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        raise TokenError("invalid_token", "the token is missing or malformed")
    try:
        payload = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            leeway=LEEWAY_SECONDS,
            options={"require": ["exp", "iat", "aud", "sub"], "strict_aud": True},
        )
    except jwt.ExpiredSignatureError:
        raise TokenError("token_expired", "the token has expired") from None
    except jwt.InvalidAudienceError:
        raise TokenError("invalid_token", "the token is not a join token") from None
    except jwt.MissingRequiredClaimError as exc:
        raise TokenError("invalid_token", f"the token lacks the {exc.claim!r} claim") from None
    except jwt.InvalidSignatureError:
        raise TokenError("invalid_token", "the token signature is not valid") from None
    except jwt.PyJWTError:
        raise TokenError("invalid_token", "the token is malformed or not valid") from None
    return _claims_from_payload(payload)


def _claims_from_payload(payload: dict[str, Any]) -> JoinClaims:
    try:
        room = validate_room_id(payload.get("room"), "room")
        identity = validate_identity(payload.get("sub"), "sub")
        name = validate_name(payload.get("name"), "name")
        role = validate_role(payload.get("role"), "role")
    except ValueError as exc:
        raise TokenError("invalid_token", f"the token has a bad claim: {exc}") from None
    issued_at = payload["iat"]
    expires_at = payload["exp"]
    if not _is_int(issued_at) or not _is_int(expires_at):
        raise TokenError("invalid_token", "the token has a bad iat or exp claim")
    if expires_at - issued_at > MAX_TTL_SECONDS:
        raise TokenError("invalid_token", "the token is valid for too long")
    return JoinClaims(
        room=room,
        identity=identity,
        name=name,
        role=role,
        issued_at=int(issued_at),
        expires_at=int(expires_at),
    )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
