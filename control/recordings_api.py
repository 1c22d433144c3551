"""Recording routes of the API.

Who may ask: the API key (the municipality's systems), or the employee in the call through their
own join token (`Authorization: Bearer <join token>` of role employee for that room). Residents
and guests cannot start or stop recordings; they see that one runs.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from control.api import bearer_token, is_api_key, unauthorized
from control.appkeys import RECORDINGS_KEY, SETTINGS_KEY, SFU_KEY, STORE_KEY
from control.errors import ApiError, read_json_object
from control.recordings import RECORDING_ID, RecordingError, Recordings
from control.tokens import TokenError, is_valid_room_id, verify_join_token

PREFIX = "/api/v1"


def _caller(request: web.Request, room: str | None) -> str:
    """ "api" for the API key, "employee" for an employee's join token for `room`; else 401/403."""
    given = bearer_token(request)
    if not given:
        raise unauthorized("a valid API key or join token is required: Authorization: Bearer <key>")
    if is_api_key(request, given):
        return "api"
    try:
        claims = verify_join_token(request.app[SETTINGS_KEY].token_secret, given)
    except TokenError:
        raise unauthorized("the API key or join token is not valid") from None
    if claims.role != "employee" or (room is not None and claims.room != room):
        raise ApiError(403, "forbidden", "only the employee in this call may do this")
    return "employee"


def _recordings(request: web.Request) -> Recordings:
    recordings = request.app.get(RECORDINGS_KEY)
    if recordings is None:
        raise ApiError(503, "recording_unavailable", "recording is not set up on this server")
    return recordings


def _room(request: web.Request) -> str:
    room = request.match_info["room"]
    if not is_valid_room_id(room):
        raise ApiError(404, "room_not_found", "no room with this id")
    return room


def _raise(exc: RecordingError) -> ApiError:
    return ApiError(exc.status, exc.code, exc.message)


async def start_recording(request: web.Request) -> web.StreamResponse:
    room_id = _room(request)
    caller = _caller(request, room_id)
    body = await read_json_object(request)
    unknown = sorted(set(body) - {"consent"})
    if unknown:
        raise ApiError(400, "invalid_request", f"unknown field: {unknown[0]}")
    store = request.app[STORE_KEY]
    room = await store.get(room_id)
    if room is None and request.app[SFU_KEY].room_snapshot(room_id) is not None:
        room = await store.ensure(room_id)  # a call from a link made with `balie token`
    if room is None:
        raise ApiError(404, "room_not_found", f"room {room_id!r} does not exist")
    try:
        record = await _recordings(request).start(
            room_id, room.case_type, body.get("consent"), caller
        )
    except RecordingError as exc:
        raise _raise(exc) from None
    return web.json_response(_recordings(request).describe(record.id), status=201)


async def stop_recording(request: web.Request) -> web.StreamResponse:
    room_id = _room(request)
    _caller(request, room_id)
    recording_id = request.match_info["recording"]
    if not RECORDING_ID.match(recording_id):
        raise ApiError(404, "recording_not_found", "no recording with this id")
    try:
        record = await _recordings(request).stop(room_id, recording_id)
    except RecordingError as exc:
        raise _raise(exc) from None
    return web.json_response(_recordings(request).describe(record.id))


async def get_recording(request: web.Request) -> web.StreamResponse:
    recording_id = request.match_info["recording"]
    if not RECORDING_ID.match(recording_id):
        raise ApiError(404, "recording_not_found", "no recording with this id")
    recordings = _recordings(request)
    record = recordings.store.load(recording_id)
    # An employee may look at the recordings of their own room only.
    _caller(request, record.room if record is not None else "\0")
    try:
        result: dict[str, Any] = recordings.describe(recording_id)
    except RecordingError as exc:
        raise _raise(exc) from None
    return web.json_response(result)


def add_routes(app: web.Application) -> None:
    app.router.add_post(f"{PREFIX}/rooms/{{room}}/recordings", start_recording)
    app.router.add_post(f"{PREFIX}/rooms/{{room}}/recordings/{{recording}}/stop", stop_recording)
    app.router.add_get(f"{PREFIX}/recordings/{{recording}}", get_recording)
