"""Join tokens: what is accepted and why everything else is rejected."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import jwt
import pytest

from control.tokens import (
    AUDIENCE,
    MAX_TTL_SECONDS,
    TokenError,
    issue_join_token,
    verify_join_token,
)

SECRET = "a" * 64
OTHER_SECRET = "b" * 64


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "room": "balie-1",
        "sub": "medewerker-42",
        "name": "Jan de Vries",
        "role": "employee",
        "iat": now,
        "exp": now + 600,
        "aud": AUDIENCE,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _encode(claims: dict[str, Any], secret: str = SECRET) -> str:
    return jwt.encode(claims, secret, algorithm="HS256")


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _rejected(token: object) -> TokenError:
    with pytest.raises(TokenError) as info:
        verify_join_token(SECRET, token)
    return info.value


def test_issued_token_verifies_with_all_claims() -> None:
    token = issue_join_token(SECRET, "balie-1", "inwoner-7", "Fatima el Amrani", "resident", 3600)
    claims = verify_join_token(SECRET, token)
    assert claims.room == "balie-1"
    assert claims.identity == "inwoner-7"
    assert claims.name == "Fatima el Amrani"
    assert claims.role == "resident"
    assert claims.expires_at - claims.issued_at == 3600
    assert abs(claims.issued_at - time.time()) < 5


def test_issued_token_has_audience_and_hs256_header() -> None:
    token = issue_join_token(SECRET, "r", "id", "Naam", "guest", 60)
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    assert jwt.decode(token, options={"verify_signature": False})["aud"] == "balie-join"


def test_control_characters_are_stripped_from_the_name() -> None:
    token = issue_join_token(SECRET, "r", "id", " Jan\x00\n\u202eeD\u202c ", "guest", 60)
    assert verify_join_token(SECRET, token).name == "JaneD"


def test_expired_token_is_rejected_with_token_expired() -> None:
    token = issue_join_token(
        SECRET, "balie-1", "id", "Naam", "resident", 60, now=time.time() - 3600
    )
    assert _rejected(token).code == "token_expired"


def test_token_signed_with_another_secret_is_rejected_as_invalid() -> None:
    assert _rejected(_encode(_claims(), OTHER_SECRET)).code == "invalid_token"


def test_token_with_alg_none_is_rejected() -> None:
    token = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims())}."
    assert _rejected(token).code == "invalid_token"


def test_token_with_another_hmac_algorithm_is_rejected() -> None:
    token = jwt.encode(_claims(), SECRET, algorithm="HS512")
    assert _rejected(token).code == "invalid_token"


@pytest.mark.parametrize("missing", ["room", "sub", "name", "role", "iat", "exp", "aud"])
def test_token_missing_a_claim_is_rejected(missing: str) -> None:
    claims = _claims()
    del claims[missing]
    assert _rejected(_encode(claims)).code == "invalid_token"


@pytest.mark.parametrize("role", ["admin", "", "Employee", 1, None])
def test_token_with_unknown_role_is_rejected(role: object) -> None:
    claims = _claims()
    claims["role"] = role
    assert _rejected(_encode(claims)).code == "invalid_token"


def test_token_for_another_audience_is_rejected() -> None:
    assert _rejected(_encode(_claims(aud="something-else"))).code == "invalid_token"


def test_token_with_audience_list_is_rejected() -> None:
    assert _rejected(_encode(_claims(aud=[AUDIENCE, "x"]))).code == "invalid_token"


@pytest.mark.parametrize("room", ["-starts-with-dash", "has space", "a" * 65, "", "ä", 7])
def test_token_with_invalid_room_id_is_rejected(room: object) -> None:
    assert _rejected(_encode(_claims(room=room))).code == "invalid_token"


@pytest.mark.parametrize("name", ["", "\x00\x01", "x" * 81, 12])
def test_token_with_invalid_name_is_rejected(name: object) -> None:
    assert _rejected(_encode(_claims(name=name))).code == "invalid_token"


def test_token_with_unprintable_identity_is_rejected() -> None:
    assert _rejected(_encode(_claims(sub="a\nb"))).code == "invalid_token"


def test_token_issued_in_the_future_is_rejected() -> None:
    now = int(time.time())
    assert _rejected(_encode(_claims(iat=now + 3600, exp=now + 7200))).code == "invalid_token"


def test_token_valid_for_longer_than_a_week_is_rejected() -> None:
    now = int(time.time())
    token = _encode(_claims(iat=now, exp=now + MAX_TTL_SECONDS + 3600))
    assert _rejected(token).code == "invalid_token"


@pytest.mark.parametrize("token", ["", "not-a-jwt", "a.b.c", None, 42, "x" * 5000])
def test_malformed_token_is_rejected_as_invalid(token: object) -> None:
    assert _rejected(token).code == "invalid_token"


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("room", {"room": "bad room"}),
        ("identity", {"identity": ""}),
        ("name", {"name": "   "}),
        ("role", {"role": "admin"}),
        ("ttl", {"ttl_seconds": 59}),
        ("ttl", {"ttl_seconds": MAX_TTL_SECONDS + 1}),
    ],
)
def test_issuing_with_bad_input_raises_value_error_naming_the_field(
    field: str, kwargs: dict[str, Any]
) -> None:
    args: dict[str, Any] = {
        "room": "r",
        "identity": "id",
        "name": "Naam",
        "role": "guest",
        "ttl_seconds": 600,
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=field):
        issue_join_token(SECRET, **args)


def test_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="secret"):
        issue_join_token("short", "r", "id", "Naam", "guest", 600)
