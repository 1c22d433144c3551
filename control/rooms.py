"""Rooms known to the control plane.

`RoomStore` is the interface; `RoomRegistry` keeps rooms in memory. The methods are async so that
a store backed by a database can replace the registry without changing its callers.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from control.tokens import validate_name, validate_room_id

# Lower-case letters and digits without look-alikes (0/o, 1/l/i), so ids can be read aloud.
_ID_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
_ID_LENGTH = 12


class RoomExistsError(Exception):
    """A room with this id already exists."""

    def __init__(self, room_id: str) -> None:
        super().__init__(f"room {room_id!r} already exists")
        self.room_id = room_id


@dataclass(frozen=True, slots=True)
class Room:
    id: str
    display_name: str | None
    created_at: str  # ISO 8601, UTC, e.g. "2025-01-31T09:30:00Z"
    # What the conversation is about (e.g. "birth_registration"); decides whether recording is
    # mandatory (Settings.mandatory_recording_case_types).
    case_type: str | None = None


class RoomStore(Protocol):
    async def create(
        self, room_id: str | None, display_name: str | None, case_type: str | None = None
    ) -> Room:
        """Create a room; a random id is chosen when `room_id` is None.

        Raises RoomExistsError if the id is taken and ValueError if the id or name is invalid.
        """
        ...

    async def get(self, room_id: str) -> Room | None: ...

    async def ensure(self, room_id: str) -> Room:
        """Return the room, creating it (without a display name) if it does not exist."""
        ...


CASE_TYPE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def validate_case_type(value: object, field: str = "case_type") -> str:
    if not isinstance(value, str) or not CASE_TYPE.match(value):
        raise ValueError(f"{field} must be 1 to 64 lower-case letters, digits, '_' or '-'")
    return value


def utc_now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def generate_room_id() -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(_ID_LENGTH))


class RoomRegistry:
    """In-memory `RoomStore`. Rooms live until the process exits."""

    def __init__(self) -> None:
        # No awaits happen while the dict is changed, so no lock is needed.
        self._rooms: dict[str, Room] = {}

    async def create(
        self,
        room_id: str | None = None,
        display_name: str | None = None,
        case_type: str | None = None,
    ) -> Room:
        name = None if display_name is None else validate_name(display_name, "name")
        if room_id is None:
            room_id = generate_room_id()
            while room_id in self._rooms:  # pragma: no cover - 31**12 ids
                room_id = generate_room_id()
        else:
            validate_room_id(room_id, "id")
            if room_id in self._rooms:
                raise RoomExistsError(room_id)
        if case_type is not None:
            validate_case_type(case_type)
        room = Room(id=room_id, display_name=name, created_at=utc_now_iso(), case_type=case_type)
        self._rooms[room_id] = room
        return room

    async def get(self, room_id: str) -> Room | None:
        return self._rooms.get(room_id)

    async def ensure(self, room_id: str) -> Room:
        room = self._rooms.get(room_id)
        if room is None:
            validate_room_id(room_id)
            room = Room(id=room_id, display_name=None, created_at=utc_now_iso())
            self._rooms[room_id] = room
        return room

    def __len__(self) -> int:
        return len(self._rooms)
