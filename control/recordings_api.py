"""Recording routes of the API.

Who may ask: the API key (the municipality's systems), or the employee in the call through their
own join token (`Authorization: Bearer <join token>` of role employee for that room). Residents
and guests cannot start or stop recordings; they see that one runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import AfterValidator, Field

from control.api import PREFIX, RoomId, RoomPath, Timestamp
from control.apispec import (
    API_KEY,
    NotFound,
    ParametersModel,
    RequestModel,
    ResponseModel,
    RouteTable,
    Security,
    SecurityScheme,
    bearer_token,
    is_api_key,
    unauthorized,
)
from control.appkeys import RECORDINGS_KEY, SETTINGS_KEY, SFU_KEY, STORE_KEY
from control.errors import ApiError
from control.recordings import (
    MAX_GIVEN_BY,
    MAX_STATEMENT,
    RECORDING_ID,
    RecordingError,
    Recordings,
)
from control.tokens import TokenError, verify_join_token

routes = RouteTable(tag="recordings")


@dataclass(frozen=True, slots=True)
class Caller:
    """Who asked: the API key (room None) or the employee of `room` by their join token."""

    kind: Literal["api", "employee"]
    room: str | None = None

    def require_room(self, room: str | None) -> None:
        """An employee may act in their own room only (None: a recording that does not exist)."""
        if self.kind == "employee" and room != self.room:
            raise ApiError(403, "forbidden", "only the employee in this call may do this")


CALLER_KEY = web.RequestKey("recording_caller", Caller)


async def _key_or_employee(request: web.Request) -> None:
    given = bearer_token(request)
    if not given:
        raise unauthorized("a valid API key or join token is required: Authorization: Bearer <key>")
    if is_api_key(request, given):
        request[CALLER_KEY] = Caller("api")
        return
    try:
        claims = verify_join_token(request.app[SETTINGS_KEY].token_secret, given)
    except TokenError:
        raise unauthorized("the API key or join token is not valid") from None
    if claims.role != "employee":
        raise ApiError(403, "forbidden", "only the employee in this call may do this")
    request[CALLER_KEY] = Caller("employee", claims.room)


EMPLOYEE_TOKEN = SecurityScheme(
    "employeeToken",
    {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "The join token of the employee in this room (role employee).",
    },
)
API_KEY_OR_EMPLOYEE = Security(
    (*API_KEY.schemes, EMPLOYEE_TOKEN),
    _key_or_employee,
    errors={403: "A join token of someone other than this room's employee (`forbidden`)."},
)


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value.strip()


RecordingId = Annotated[
    str,
    Field(pattern=RECORDING_ID.pattern, examples=["rec_0123456789abcdef"]),
    NotFound("recording_not_found", "no recording with this id"),
]


class RecordingPath(ParametersModel):
    recording: RecordingId


class RoomRecordingPath(RoomPath):
    recording: RecordingId


class Consent(RequestModel):
    """The resident's consent, as they gave it."""

    given_by: Annotated[str, AfterValidator(_not_blank)] = Field(
        min_length=1, max_length=MAX_GIVEN_BY, description="Who agreed.", examples=["inwoner-1"]
    )
    statement: Annotated[str, AfterValidator(_not_blank)] = Field(
        min_length=1,
        max_length=MAX_STATEMENT,
        description="What was agreed, in their words or the text they confirmed.",
        examples=["Ik vind opnemen goed."],
    )


class StartRecordingRequest(RequestModel):
    consent: Consent | None = Field(
        default=None,
        description="Needed unless the room's case type makes recording mandatory.",
        examples=[{"given_by": "inwoner-1", "statement": "Ik vind opnemen goed."}],
    )


class RecordedConsent(ResponseModel):
    given_by: str
    statement: str
    given_at: Timestamp


class Recording(ResponseModel):
    """A recording: state, legal basis, segments and manifest."""

    id: str
    room: RoomId
    state: Literal["recording", "stopped"]
    started_at: Timestamp
    stopped_at: Timestamp | None
    stop_reason: str | None
    basis: Literal["consent", "mandatory"]
    case_type: str | None
    consent: RecordedConsent | None
    segments: list[dict[str, Any]]
    manifest: dict[str, Any] | None = Field(description="The archive manifest (docs/recording.md).")


def _recordings(request: web.Request) -> Recordings:
    recordings = request.app.get(RECORDINGS_KEY)
    if recordings is None:
        raise ApiError(503, "recording_unavailable", "recording is not set up on this server")
    return recordings


def _describe(recordings: Recordings, recording_id: str) -> Recording:
    try:
        return Recording.model_validate(recordings.describe(recording_id))
    except RecordingError as exc:
        raise ApiError(exc.status, exc.code, exc.message) from None


_UNAVAILABLE = "Recording is not set up (`recording_unavailable`) or the recorder is not available"
_UNAVAILABLE += " (`recorder_unavailable`)."


@routes.post(
    f"{PREFIX}/rooms/{{room}}/recordings",
    status=201,
    security=API_KEY_OR_EMPLOYEE,
    summary="Start recording the call in this room",
    description=(
        "Needs the resident's consent unless the room's case type makes recording mandatory. "
        "Allowed with the API key or the join token of the employee in this room. Every "
        "participant's page shows that the call is being recorded."
    ),
    returns="The recording runs.",
    errors={
        404: "No such room (`room_not_found`).",
        409: "The room is being recorded already (`recording_active`).",
        422: "Consent is needed and missing (`consent_required`).",
        503: _UNAVAILABLE,
    },
)
async def start_recording(
    request: web.Request, path: RoomPath, body: StartRecordingRequest
) -> Recording:
    request[CALLER_KEY].require_room(path.room)
    store = request.app[STORE_KEY]
    room = await store.get(path.room)
    if room is None and request.app[SFU_KEY].room_snapshot(path.room) is not None:
        room = await store.ensure(path.room)  # a call from a link made with `balie token`
    if room is None:
        raise ApiError(404, "room_not_found", f"room {path.room!r} does not exist")
    recordings = _recordings(request)
    consent = body.consent.model_dump() if body.consent is not None else None
    try:
        record = await recordings.start(
            path.room, room.case_type, consent, request[CALLER_KEY].kind
        )
    except RecordingError as exc:
        raise ApiError(exc.status, exc.code, exc.message) from None
    return _describe(recordings, record.id)


@routes.post(
    f"{PREFIX}/rooms/{{room}}/recordings/{{recording}}/stop",
    security=API_KEY_OR_EMPLOYEE,
    summary="Stop a recording (stopping twice is harmless)",
    returns="The recording, stopped, with its final manifest.",
    errors={
        404: "No such recording in this room (`recording_not_found`).",
        503: "Recording is not set up on this server (`recording_unavailable`).",
    },
)
async def stop_recording(request: web.Request, path: RoomRecordingPath) -> Recording:
    request[CALLER_KEY].require_room(path.room)
    recordings = _recordings(request)
    try:
        record = await recordings.stop(path.room, path.recording)
    except RecordingError as exc:
        raise ApiError(exc.status, exc.code, exc.message) from None
    return _describe(recordings, record.id)


@routes.get(
    f"{PREFIX}/recordings/{{recording}}",
    security=API_KEY_OR_EMPLOYEE,
    summary="A recording: state, consent, segments and manifest",
    description="An employee may look at the recordings of their own room only.",
    errors={
        404: "No recording with this id (`recording_not_found`).",
        503: "Recording is not set up on this server (`recording_unavailable`).",
    },
)
async def get_recording(request: web.Request, path: RecordingPath) -> Recording:
    recordings = _recordings(request)
    record = recordings.store.load(path.recording)
    request[CALLER_KEY].require_room(record.room if record is not None else None)
    return _describe(recordings, path.recording)


def add_routes(app: web.Application) -> None:
    routes.add_to(app)
