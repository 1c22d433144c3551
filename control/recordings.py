"""Recordings of counter calls: consent, start and stop, and what is kept about them.

The control plane decides (consent, who may start, one recording per room), the recorder process
(recorder/) writes the media, the SFU sends it there (sfu/recording_tap.py). Each recording has a
directory ``<data_dir>/recordings/<id>/`` holding ``recording.json`` (this module's record,
written atomically on every change), the encrypted segments and the recorder's ``manifest.json``.
A record is never deleted by the server: it is the archive's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from common.files import write_json_atomic
from common.ports import free_udp_port
from control.rooms import utc_now_iso
from control.sfu_types import SfuLike

RECORDING_ID = re.compile(r"^rec_[a-z0-9]{16}$")
MAX_STATEMENT = 2000
MAX_GIVEN_BY = 200

STATE_RECORDING = "recording"
STATE_STOPPED = "stopped"


class RecordingError(Exception):
    """A request about a recording that cannot be done; `status` and `code` for the API."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass
class RecordingRecord:
    id: str
    room: str
    state: str
    started_at: str
    started_by: str  # "api" or "employee" (who pressed start; identities stay in the consent)
    case_type: str | None
    # The legal basis: the consent given, or the case type that makes recording mandatory.
    consent: dict[str, Any] | None
    basis: str  # "consent" | "mandatory"
    port: int  # the recorder's UDP port on 127.0.0.1 for this recording
    started_unix_s: float = 0.0  # exact start: the origin of the recording's timeline
    stopped_at: str | None = None
    stopped_unix_s: float | None = None
    stop_reason: str | None = None
    recorder_restarts: int = 0
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> RecordingRecord:
        return cls(**value)


def recordings_dir(data_dir: Path) -> Path:
    return data_dir / "recordings"


class RecordingStore:
    """`recording.json` files under ``<data_dir>/recordings``."""

    def __init__(self, data_dir: Path) -> None:
        self.root = recordings_dir(data_dir)

    def directory(self, recording_id: str) -> Path:
        if not RECORDING_ID.match(recording_id):
            raise ValueError("not a recording id")
        return self.root / recording_id

    def save(self, record: RecordingRecord) -> None:
        write_json_atomic(self.directory(record.id) / "recording.json", record.to_json())

    def load(self, recording_id: str) -> RecordingRecord | None:
        if not RECORDING_ID.match(recording_id):
            return None
        path = self.root / recording_id / "recording.json"
        try:
            return RecordingRecord.from_json(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            return None

    def all(self) -> list[RecordingRecord]:
        records = []
        if self.root.is_dir():
            for path in sorted(self.root.glob("rec_*/recording.json")):
                record = self.load(path.parent.name)
                if record is not None:
                    records.append(record)
        return records

    def manifest(self, recording_id: str) -> dict[str, Any] | None:
        path = self.directory(recording_id) / "manifest.json"
        try:
            value = json.loads(path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return None
        return value if isinstance(value, dict) else None


class RecorderLike(Protocol):
    """The recorder process as the control plane uses it (control/recorder_process.py)."""

    async def begin(self, record: RecordingRecord, directory: Path) -> None:
        """Start (or continue, in a new segment) writing this recording."""
        ...

    async def end(self, record: RecordingRecord, directory: Path) -> None:
        """Stop writing; the manifest is final when this returns."""
        ...

    @property
    def restarts(self) -> int: ...


def check_consent(value: object, given_at: str) -> dict[str, Any]:
    """The consent record from a request: who agreed, to what, and when it was recorded."""
    if not isinstance(value, dict):
        raise RecordingError(400, "invalid_request", "consent must be an object")
    unknown = sorted(set(value) - {"given_by", "statement"})
    if unknown:
        raise RecordingError(400, "invalid_request", f"unknown consent field: {unknown[0]}")
    given_by = value.get("given_by")
    statement = value.get("statement")
    if not isinstance(given_by, str) or not given_by.strip() or len(given_by) > MAX_GIVEN_BY:
        raise RecordingError(
            400,
            "invalid_request",
            f"consent.given_by must name who agreed (1 to {MAX_GIVEN_BY} characters)",
        )
    if not isinstance(statement, str) or not statement.strip() or len(statement) > MAX_STATEMENT:
        raise RecordingError(
            400,
            "invalid_request",
            f"consent.statement must say what was agreed (1 to {MAX_STATEMENT} characters)",
        )
    return {"given_by": given_by.strip(), "statement": statement.strip(), "given_at": given_at}


class Recordings:
    """Starting, stopping and describing recordings; one active recording per room."""

    def __init__(
        self,
        store: RecordingStore,
        recorder: RecorderLike,
        sfu: SfuLike,
        mandatory_case_types: frozenset[str] = frozenset(),
    ) -> None:
        self.store = store
        self.recorder = recorder
        self.sfu = sfu
        self.mandatory_case_types = mandatory_case_types
        self._lock = asyncio.Lock()
        self._active: dict[str, RecordingRecord] = {}  # by room

    async def recover(self) -> None:
        """After a restart of the server the calls are gone: recordings left open are ended."""
        for record in self.store.all():
            if record.state == STATE_RECORDING:
                record.state = STATE_STOPPED
                record.stopped_at = utc_now_iso()
                record.stop_reason = "server_restart"
                self.store.save(record)
                await self.recorder.end(record, self.store.directory(record.id))

    def active(self, room: str) -> RecordingRecord | None:
        return self._active.get(room)

    def active_records(self) -> list[RecordingRecord]:
        return list(self._active.values())

    async def start(
        self,
        room: str,
        case_type: str | None,
        consent: object,
        started_by: str,
    ) -> RecordingRecord:
        now = utc_now_iso()
        mandatory = case_type is not None and case_type in self.mandatory_case_types
        if consent is None and not mandatory:
            raise RecordingError(
                422,
                "consent_required",
                "recording this call needs the resident's consent: "
                '{"consent": {"given_by": ..., "statement": ...}}',
            )
        checked = check_consent(consent, now) if consent is not None else None
        async with self._lock:
            if room in self._active:
                raise RecordingError(409, "recording_active", "this room is being recorded already")
            record = RecordingRecord(
                id=f"rec_{secrets.token_hex(8)}",
                room=room,
                state=STATE_RECORDING,
                started_at=now,
                started_by=started_by,
                case_type=case_type,
                consent=checked,
                basis="consent" if checked is not None else "mandatory",
                port=free_udp_port(),
                started_unix_s=time.time(),
            )
            directory = self.store.directory(record.id)
            self.store.save(record)  # the consent is on disk before anything is recorded
            try:
                await self.recorder.begin(record, directory)
            except Exception as exc:
                record.state = STATE_STOPPED
                record.stopped_at = utc_now_iso()
                record.stop_reason = "recorder_unavailable"
                self.store.save(record)
                raise RecordingError(
                    503, "recorder_unavailable", "the recorder is not available; try again"
                ) from exc
            self._active[room] = record
        await self.sfu.set_recording(room, record.id, record.port)
        return record

    async def stop(self, room: str, recording_id: str, reason: str = "stopped") -> RecordingRecord:
        record = self.store.load(recording_id)
        if record is None or record.room != room:
            raise RecordingError(404, "recording_not_found", "no such recording in this room")
        async with self._lock:
            if record.state != STATE_RECORDING or self._active.get(room) is None:
                return record  # stopping twice is harmless
            await self.sfu.set_recording(room, None)
            record.state = STATE_STOPPED
            record.stopped_at = utc_now_iso()
            record.stopped_unix_s = time.time()
            record.stop_reason = reason
            record.recorder_restarts = self.recorder.restarts
            self.store.save(record)
            self._active.pop(room, None)
            await self.recorder.end(record, self.store.directory(record.id))
        return record

    async def resume_all(self) -> None:
        """The recorder process restarted: continue every active recording in a new segment."""
        for record in list(self._active.values()):
            record.recorder_restarts += 1
            record.notes.append(f"{utc_now_iso()} recorder restarted; new segment")
            self.store.save(record)
            await self.recorder.begin(record, self.store.directory(record.id))

    def describe(self, recording_id: str) -> dict[str, Any]:
        record = self.store.load(recording_id)
        if record is None:
            raise RecordingError(404, "recording_not_found", "no recording with this id")
        manifest = self.store.manifest(recording_id)
        segments = manifest.get("segments", []) if manifest else []
        return {
            "id": record.id,
            "room": record.room,
            "state": record.state,
            "started_at": record.started_at,
            "stopped_at": record.stopped_at,
            "stop_reason": record.stop_reason,
            "basis": record.basis,
            "case_type": record.case_type,
            "consent": record.consent,
            "segments": segments,
            "manifest": manifest,
        }

    async def close(self) -> None:
        """The server stops: end every recording cleanly."""
        for record in list(self._active.values()):
            with contextlib.suppress(Exception):
                await self.stop(record.room, record.id, reason="server_shutdown")
