"""Admin API under /api/v1."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from control.tokens import verify_join_token
from tests.control_fakes import API_KEY, BASE_URL, TOKEN_SECRET, Harness, no_send, running_app


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    async with running_app(tmp_path) as h:
        yield h


async def _error(response: Any, status: int, code: str) -> str:
    assert response.status == status
    assert response.content_type == "application/json"
    body = await response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == code
    message: str = body["error"]["message"]
    assert message
    return message


async def _create_room(h: Harness, **body: Any) -> dict[str, Any]:
    response = await h.client.post("/api/v1/rooms", json=body, headers=h.auth)
    assert response.status == 201
    result: dict[str, Any] = await response.json()
    return result


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/v1/rooms"),
        ("GET", "/api/v1/rooms/balie-1"),
        ("POST", "/api/v1/rooms/balie-1/tokens"),
    ],
)
@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer wrong-key", f"Basic {API_KEY}", f"Bearer {API_KEY}x"],
)
async def test_every_admin_route_requires_the_api_key(
    harness: Harness, method: str, path: str, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = await harness.client.request(method, path, json={}, headers=headers)
    await _error(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_create_room_with_id_and_name_returns_201_and_the_room(harness: Harness) -> None:
    room = await _create_room(harness, id="balie-1", name="Burgerzaken")
    assert room["id"] == "balie-1"
    assert room["name"] == "Burgerzaken"
    created = datetime.fromisoformat(room["created_at"])
    assert created.tzinfo is not None and created.utcoffset() == UTC.utcoffset(None)
    assert room["created_at"].endswith("Z")


async def test_create_room_without_body_generates_an_id(harness: Harness) -> None:
    response = await harness.client.post("/api/v1/rooms", headers=harness.auth)
    assert response.status == 201
    room = await response.json()
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}", room["id"])
    assert room["name"] is None


async def test_duplicate_room_id_is_rejected_with_409_room_exists(harness: Harness) -> None:
    await _create_room(harness, id="balie-1")
    response = await harness.client.post(
        "/api/v1/rooms", json={"id": "balie-1"}, headers=harness.auth
    )
    await _error(response, 409, "room_exists")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"id": "bad id"}, "id"),
        ({"id": 5}, "id"),
        ({"name": ""}, "name"),
        ({"name": "x" * 81}, "name"),
        ({"colour": "blue"}, "colour"),
    ],
)
async def test_invalid_room_fields_are_rejected_naming_the_field(
    harness: Harness, body: dict[str, Any], field: str
) -> None:
    response = await harness.client.post("/api/v1/rooms", json=body, headers=harness.auth)
    assert field in await _error(response, 400, "invalid_request")


async def test_malformed_json_body_is_rejected_with_400_bad_json(harness: Harness) -> None:
    response = await harness.client.post(
        "/api/v1/rooms",
        data=b'{"id": "balie-1"',
        headers={**harness.auth, "Content-Type": "application/json"},
    )
    await _error(response, 400, "bad_json")


@pytest.mark.parametrize("body", [b"[1, 2]", b'"room"', b"\xff\xfe", b"[" * 50_000])
async def test_json_body_that_is_not_an_object_is_rejected_with_bad_json(
    harness: Harness, body: bytes
) -> None:
    response = await harness.client.post("/api/v1/rooms", data=body, headers=harness.auth)
    await _error(response, 400, "bad_json")


async def test_token_for_a_room_that_was_never_created_is_404_room_not_found(
    harness: Harness,
) -> None:
    response = await harness.client.post(
        "/api/v1/rooms/nergens/tokens",
        json={"identity": "a", "name": "A", "role": "guest"},
        headers=harness.auth,
    )
    await _error(response, 404, "room_not_found")


async def test_token_response_has_token_fragment_join_url_and_expiry(harness: Harness) -> None:
    await _create_room(harness, id="balie-1")
    before = datetime.now(UTC).timestamp()
    response = await harness.client.post(
        "/api/v1/rooms/balie-1/tokens",
        json={"identity": "inwoner-7", "name": "Sanne Jansen", "role": "resident", "ttl": 900},
        headers=harness.auth,
    )
    assert response.status == 201
    assert response.headers["Cache-Control"] == "no-store"
    body = await response.json()
    assert set(body) == {"token", "join_url", "expires_at"}
    url = urlsplit(body["join_url"])
    assert f"{url.scheme}://{url.netloc}" == BASE_URL
    assert url.path == "/call"
    assert url.query == ""
    assert url.fragment == f"token={body['token']}"
    claims = verify_join_token(TOKEN_SECRET, body["token"])
    assert (claims.room, claims.identity, claims.name, claims.role) == (
        "balie-1",
        "inwoner-7",
        "Sanne Jansen",
        "resident",
    )
    expires = datetime.fromisoformat(body["expires_at"]).timestamp()
    assert expires == claims.expires_at
    assert before + 900 - 2 <= expires <= before + 900 + 2


async def test_token_ttl_defaults_to_a_day(harness: Harness) -> None:
    await _create_room(harness, id="balie-1")
    response = await harness.client.post(
        "/api/v1/rooms/balie-1/tokens",
        json={"identity": "m", "name": "M", "role": "employee"},
        headers=harness.auth,
    )
    claims = verify_join_token(TOKEN_SECRET, (await response.json())["token"])
    assert claims.expires_at - claims.issued_at == 86400


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "A", "role": "guest"}, "identity"),
        ({"identity": "a", "role": "guest"}, "name"),
        ({"identity": "a", "name": "A"}, "role"),
        ({"identity": "a", "name": "A", "role": "admin"}, "role"),
        ({"identity": "a", "name": "A", "role": "guest", "ttl": 10}, "ttl"),
        ({"identity": "a", "name": "A", "role": "guest", "ttl": "600"}, "ttl"),
        ({"identity": "a", "name": "A", "role": "guest", "ttl": True}, "ttl"),
        ({"identity": "", "name": "A", "role": "guest"}, "identity"),
        ({"identity": "a", "name": 3, "role": "guest"}, "name"),
    ],
)
async def test_invalid_token_request_is_rejected_naming_the_field(
    harness: Harness, body: dict[str, Any], field: str
) -> None:
    await _create_room(harness, id="balie-1")
    response = await harness.client.post(
        "/api/v1/rooms/balie-1/tokens", json=body, headers=harness.auth
    )
    assert field in await _error(response, 400, "invalid_request")


async def test_get_room_lists_participants_from_the_sfu(harness: Harness) -> None:
    room = await _create_room(harness, id="balie-1", name="Paspoort")
    await harness.sfu.join("balie-1", "medewerker", "Mo", "employee", no_send)
    await harness.sfu.join("balie-1", "inwoner", "Els", "resident", no_send)
    response = await harness.client.get("/api/v1/rooms/balie-1", headers=harness.auth)
    assert response.status == 200
    body = await response.json()
    assert body["id"] == "balie-1"
    assert body["name"] == "Paspoort"
    assert body["created_at"] == room["created_at"]
    assert [(p["name"], p["role"]) for p in body["participants"]] == [
        ("Mo", "employee"),
        ("Els", "resident"),
    ]
    assert "medewerker" not in str(body)  # identities are never shown


async def test_get_empty_room_has_no_participants(harness: Harness) -> None:
    await _create_room(harness, id="balie-1")
    response = await harness.client.get("/api/v1/rooms/balie-1", headers=harness.auth)
    assert (await response.json())["participants"] == []


async def test_room_known_only_to_the_sfu_is_returned_without_name(harness: Harness) -> None:
    await harness.sfu.join("cli-room", "x", "X", "guest", no_send)
    response = await harness.client.get("/api/v1/rooms/cli-room", headers=harness.auth)
    assert response.status == 200
    body = await response.json()
    assert body["id"] == "cli-room"
    assert body["name"] is None
    assert len(body["participants"]) == 1


@pytest.mark.parametrize("room", ["onbekend", "not%20valid"])
async def test_unknown_room_is_404_room_not_found(harness: Harness, room: str) -> None:
    response = await harness.client.get(f"/api/v1/rooms/{room}", headers=harness.auth)
    await _error(response, 404, "room_not_found")


async def test_openapi_document_needs_no_key_and_describes_the_api(harness: Harness) -> None:
    response = await harness.client.get("/api/v1/openapi.json")
    assert response.status == 200
    doc = await response.json()
    assert doc["openapi"].startswith("3.1")
    assert set(doc["paths"]) >= {
        "/api/v1/rooms",
        "/api/v1/rooms/{room}",
        "/api/v1/rooms/{room}/tokens",
        "/api/v1/openapi.json",
    }
    assert doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert "Error" in doc["components"]["schemas"]
    assert doc["paths"]["/api/v1/openapi.json"]["get"]["security"] == []


async def test_openapi_references_all_point_to_existing_schemas(harness: Harness) -> None:
    doc = await (await harness.client.get("/api/v1/openapi.json")).json()
    refs = re.findall(r'"\$ref": "#/components/schemas/(\w+)"', str(doc).replace("'", '"'))
    assert refs
    assert set(refs) <= set(doc["components"]["schemas"])


async def test_unknown_route_is_a_json_404(harness: Harness) -> None:
    response = await harness.client.get("/api/v1/nothing-here", headers=harness.auth)
    await _error(response, 404, "not_found")


async def test_wrong_method_is_a_json_405_with_allow_header(harness: Harness) -> None:
    response = await harness.client.delete("/api/v1/rooms", headers=harness.auth)
    await _error(response, 405, "method_not_allowed")
    assert "POST" in response.headers["Allow"]


async def test_oversized_body_is_a_json_413(harness: Harness) -> None:
    response = await harness.client.post(
        "/api/v1/rooms", data=b"{" + b" " * 200_000 + b"}", headers=harness.auth
    )
    await _error(response, 413, "payload_too_large")
