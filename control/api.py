"""Admin API under /api/v1: rooms, join tokens and the OpenAPI document.

Every route is declared with `control.apispec` (docs/architecture.md, "Adding an API route"):
its models validate the request and are the document's schemas.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import AfterValidator, Field

from control.apispec import (
    API_KEY,
    API_ROUTES_KEY,
    PUBLIC,
    JsonInt,
    NotFound,
    ParametersModel,
    RawResponse,
    RequestModel,
    ResponseModel,
    RouteTable,
    openapi_document,
)
from control.appkeys import RECORDINGS_KEY, SETTINGS_KEY, SFU_KEY, STORE_KEY
from control.errors import ApiError
from control.rooms import CASE_TYPE, RoomExistsError
from control.rooms import Room as StoredRoom
from control.tokens import (
    DEFAULT_TTL_SECONDS,
    MAX_IDENTITY_LENGTH,
    MAX_NAME_LENGTH,
    MAX_TTL_SECONDS,
    MIN_TTL_SECONDS,
    ROOM_ID_RE,
    Role,
    clean_name,
    issue_join_token,
)

PREFIX = "/api/v1"

API_INFO: dict[str, Any] = {
    "title": "Digitale Balie API",
    "version": "1.0.0",
    "description": (
        "Create rooms and join links for the Digitale Balie video counter, record calls, watch "
        "the server. Send the API key as `Authorization: Bearer <API key>` where an operation "
        'needs it. Errors are returned as `{"error": {"code": ..., "message": ...}}`.'
    ),
    "license": {"name": "EUPL-1.2", "identifier": "EUPL-1.2"},
}

routes = RouteTable(tag="rooms")


def _clean_name(value: str) -> str:
    cleaned = clean_name(value)
    if not 1 <= len(cleaned) <= MAX_NAME_LENGTH:
        raise ValueError(f"must be 1 to {MAX_NAME_LENGTH} characters")
    return cleaned


def _printable(value: str) -> str:
    if not value.isprintable():
        raise ValueError(f"must be 1 to {MAX_IDENTITY_LENGTH} printable characters")
    return value


RoomId = Annotated[
    str,
    Field(
        pattern=f"^{ROOM_ID_RE.pattern}$",
        description="1 to 64 letters, digits, '-' or '_', starting with a letter or digit.",
        examples=["balie-1"],
    ),
]
# Something visible must be left once control and text-direction characters and surrounding
# white space are gone (what `_clean_name` checks; told to clients as a JSON Schema pattern).
VISIBLE_CHARACTER = r"[^\s\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]"
DisplayName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_NAME_LENGTH,
        description="Control and text-direction characters are removed; something must be left.",
        examples=["Burgerzaken"],
        json_schema_extra={"pattern": VISIBLE_CHARACTER},
    ),
    AfterValidator(_clean_name),
]
CaseType = Annotated[
    str,
    Field(
        pattern=CASE_TYPE.pattern,
        description=(
            "What the conversation is about; some case types are recorded by law (no consent "
            "needed)."
        ),
        examples=["paspoort"],
    ),
]
Timestamp = Annotated[
    str, Field(description="ISO 8601, UTC.", json_schema_extra={"format": "date-time"})
]


class RoomPath(ParametersModel):
    room: Annotated[RoomId, NotFound("room_not_found", "no room with this id")]


class CreateRoomRequest(RequestModel):
    """A room to create; every field is optional."""

    id: RoomId | None = Field(default=None, description="Generated when absent.")
    name: DisplayName | None = Field(default=None, description="Display name of the room.")
    case_type: CaseType | None = None


class CreateTokenRequest(RequestModel):
    """One person's join token."""

    identity: Annotated[str, AfterValidator(_printable)] = Field(
        min_length=1,
        max_length=MAX_IDENTITY_LENGTH,
        description=(
            "Who this is, for your own records; never shown to other participants. A new join "
            "with the same identity replaces the old one. Printable characters only (no control, "
            "format or line separator characters)."
        ),
        examples=["inwoner-1"],
    )
    name: DisplayName = Field(description="Name shown to the other participants.")
    role: Role = Field(examples=["resident"])
    ttl: JsonInt = Field(
        default=DEFAULT_TTL_SECONDS,
        ge=MIN_TTL_SECONDS,
        le=MAX_TTL_SECONDS,
        description="How long the token is valid, in seconds.",
        examples=[900],
    )


class Room(ResponseModel):
    """The room."""

    id: str
    name: str | None
    created_at: Timestamp | None = Field(
        description="ISO 8601, UTC; null for a room never created."
    )
    case_type: str | None


class Track(ResponseModel):
    id: str
    kind: Literal["audio", "video"]
    muted: bool


class Participant(ResponseModel):
    id: str = Field(description="Opaque per-session id (never the identity).")
    name: str
    role: Role
    tracks: list[Track]


class ActiveRecording(ResponseModel):
    id: str
    started_at: Timestamp


class RoomWithParticipants(Room):
    """The room, who is in it now and its recording, if one runs."""

    participants: list[Participant]
    recording: ActiveRecording | None


class JoinToken(ResponseModel):
    """The token and join link."""

    token: str = Field(description="HS256 JWT.")
    join_url: str = Field(
        description="`<base url>/call#token=<token>`: the token is in the fragment, so browsers "
        "never send it to a server.",
        json_schema_extra={"format": "uri"},
    )
    expires_at: Timestamp


def _room(room: StoredRoom) -> Room:
    return Room(
        id=room.id, name=room.display_name, created_at=room.created_at, case_type=room.case_type
    )


def _iso_utc(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat().replace("+00:00", "Z")


@routes.post(
    f"{PREFIX}/rooms",
    status=201,
    security=API_KEY,
    summary="Create a room",
    returns="The room was created.",
    errors={409: "A room with this id already exists (`room_exists`)."},
)
async def create_room(request: web.Request, body: CreateRoomRequest) -> Room:
    try:
        room = await request.app[STORE_KEY].create(body.id, body.name, body.case_type)
    except RoomExistsError:
        raise ApiError(409, "room_exists", f"room {body.id!r} already exists") from None
    return _room(room)


@routes.post(
    f"{PREFIX}/rooms/{{room}}/tokens",
    status=201,
    security=API_KEY,
    operation_id="createJoinToken",
    summary="Create a join token and link for one person",
    description="The room must have been created with `POST /api/v1/rooms`.",
    errors={404: "No such room (`room_not_found`)."},
)
async def create_token(request: web.Request, path: RoomPath, body: CreateTokenRequest) -> JoinToken:
    if await request.app[STORE_KEY].get(path.room) is None:
        raise ApiError(404, "room_not_found", f"room {path.room!r} does not exist; create it first")
    settings = request.app[SETTINGS_KEY]
    now = int(datetime.now(UTC).timestamp())
    token = issue_join_token(
        settings.token_secret, path.room, body.identity, body.name, body.role, body.ttl, now=now
    )
    return JoinToken(
        token=token,
        # The token goes in the fragment: browsers never send it to a server or put it in logs.
        join_url=f"{settings.base_url}/call#token={token}",
        expires_at=_iso_utc(now + body.ttl),
    )


@routes.get(
    f"{PREFIX}/rooms/{{room}}",
    security=API_KEY,
    summary="A room and the participants currently in it",
    description=(
        "Rooms that were never created through the API but that someone joined with a valid "
        "token are returned with `name` and `created_at` null."
    ),
    errors={404: "No such room (`room_not_found`)."},
)
async def get_room(request: web.Request, path: RoomPath) -> RoomWithParticipants:
    room = await request.app[STORE_KEY].get(path.room)
    snapshot = request.app[SFU_KEY].room_snapshot(path.room)
    if room is None and snapshot is None:
        raise ApiError(404, "room_not_found", f"room {path.room!r} does not exist")
    base = (
        _room(room)
        if room is not None
        else Room(id=path.room, name=None, created_at=None, case_type=None)
    )
    participants = snapshot.get("participants", []) if snapshot else []
    recordings = request.app.get(RECORDINGS_KEY)
    active = recordings.active(path.room) if recordings is not None else None
    return RoomWithParticipants(
        **base.model_dump(),
        participants=[Participant.model_validate(p) for p in participants],
        recording=ActiveRecording(id=active.id, started_at=active.started_at) if active else None,
    )


@routes.get(
    f"{PREFIX}/openapi.json",
    security=PUBLIC,
    operation_id="getOpenApi",
    summary="This document",
    returns="OpenAPI 3.1 document.",
    raw=RawResponse("application/json", {"type": "object"}),
)
async def get_openapi(request: web.Request) -> web.StreamResponse:
    registry = request.app[API_ROUTES_KEY]
    document = registry.cache.get("openapi")
    if document is None:
        document = registry.cache["openapi"] = openapi_document(registry.routes, API_INFO)
    return web.json_response(document)


def add_routes(app: web.Application) -> None:
    routes.add_to(app)
