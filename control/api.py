"""Admin API under /api/v1. Every route except the OpenAPI document needs the API key."""

from __future__ import annotations

import functools
import hmac
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from control.appkeys import RECORDINGS_KEY, SETTINGS_KEY, SFU_KEY, STORE_KEY
from control.errors import ApiError, read_json_object
from control.openapi import openapi_document
from control.rooms import Room, RoomExistsError, validate_case_type
from control.tokens import (
    DEFAULT_TTL_SECONDS,
    is_valid_room_id,
    issue_join_token,
    validate_identity,
    validate_name,
    validate_role,
    validate_room_id,
    validate_ttl,
)

PREFIX = "/api/v1"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def require_api_key(handler: Handler) -> Handler:
    """Reject requests without ``Authorization: Bearer <api key>`` with 401 ``unauthorized``."""

    @functools.wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        if not is_api_key(request, bearer_token(request)):
            raise unauthorized("a valid API key is required: Authorization: Bearer <key>")
        return await handler(request)

    return wrapper


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


def _invalid(message: str) -> ApiError:
    return ApiError(400, "invalid_request", message)


def _check_fields(body: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise _invalid(f"unknown field: {unknown[0]}")


def _room_json(room: Room) -> dict[str, Any]:
    return {
        "id": room.id,
        "name": room.display_name,
        "created_at": room.created_at,
        "case_type": room.case_type,
    }


def _iso_utc(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat().replace("+00:00", "Z")


@require_api_key
async def create_room(request: web.Request) -> web.StreamResponse:
    body = await read_json_object(request)
    _check_fields(body, {"id", "name", "case_type"})
    room_id = body.get("id")
    name = body.get("name")
    case_type = body.get("case_type")
    try:
        if room_id is not None:
            validate_room_id(room_id, "id")
        if name is not None:
            name = validate_name(name, "name")
        if case_type is not None:
            case_type = validate_case_type(case_type)
    except ValueError as exc:
        raise _invalid(str(exc)) from None
    try:
        room = await request.app[STORE_KEY].create(room_id, name, case_type)
    except RoomExistsError:
        raise ApiError(409, "room_exists", f"room {room_id!r} already exists") from None
    return web.json_response(_room_json(room), status=201)


def _room_param(request: web.Request) -> str:
    room_id = request.match_info["room"]
    if not is_valid_room_id(room_id):
        raise ApiError(404, "room_not_found", "no room with this id")
    return room_id


@require_api_key
async def create_token(request: web.Request) -> web.StreamResponse:
    room_id = _room_param(request)
    body = await read_json_object(request)
    _check_fields(body, {"identity", "name", "role", "ttl"})
    for field in ("identity", "name", "role"):
        if field not in body:
            raise _invalid(f"{field} is required")
    try:
        identity = validate_identity(body["identity"], "identity")
        name = validate_name(body["name"], "name")
        role = validate_role(body["role"], "role")
        ttl = validate_ttl(body.get("ttl", DEFAULT_TTL_SECONDS), "ttl")
    except ValueError as exc:
        raise _invalid(str(exc)) from None
    if await request.app[STORE_KEY].get(room_id) is None:
        raise ApiError(404, "room_not_found", f"room {room_id!r} does not exist; create it first")
    settings = request.app[SETTINGS_KEY]
    now = int(datetime.now(UTC).timestamp())
    token = issue_join_token(settings.token_secret, room_id, identity, name, role, ttl, now=now)
    return web.json_response(
        {
            "token": token,
            # The token goes in the fragment: browsers never send it to a server or put it in logs.
            "join_url": f"{settings.base_url}/call#token={token}",
            "expires_at": _iso_utc(now + ttl),
        },
        status=201,
    )


@require_api_key
async def get_room(request: web.Request) -> web.StreamResponse:
    room_id = _room_param(request)
    room = await request.app[STORE_KEY].get(room_id)
    snapshot = request.app[SFU_KEY].room_snapshot(room_id)
    if room is None and snapshot is None:
        raise ApiError(404, "room_not_found", f"room {room_id!r} does not exist")
    participants: list[Any] = list(snapshot.get("participants", [])) if snapshot else []
    result: dict[str, Any] = (
        _room_json(room)
        if room is not None
        else {"id": room_id, "name": None, "created_at": None, "case_type": None}
    )
    result["participants"] = participants
    recordings = request.app.get(RECORDINGS_KEY)
    active = recordings.active(room_id) if recordings is not None else None
    result["recording"] = {"id": active.id, "started_at": active.started_at} if active else None
    return web.json_response(result)


async def get_openapi(request: web.Request) -> web.StreamResponse:
    return web.json_response(openapi_document())


def add_routes(app: web.Application) -> None:
    app.router.add_post(f"{PREFIX}/rooms", create_room)
    app.router.add_get(f"{PREFIX}/rooms/{{room}}", get_room)
    app.router.add_post(f"{PREFIX}/rooms/{{room}}/tokens", create_token)
    app.router.add_get(f"{PREFIX}/openapi.json", get_openapi)
