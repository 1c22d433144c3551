"""The SFU as the control plane sees it: rooms, joining, and one session per signalling socket."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from sfu.config import SfuConfig
from sfu.errors import SignallingError
from sfu.metrics import MediaCounters, participant_counters
from sfu.participant import Participant
from sfu.room import Room

Send = Callable[[dict[str, object]], Awaitable[None]]


class ParticipantSession:
    """The signalling side of one participant: checks each message and hands it on."""

    def __init__(self, participant: Participant) -> None:
        self._participant = participant

    @property
    def participant_id(self) -> str:
        return self._participant.id

    @property
    def close_code(self) -> int:
        return self._participant.close_code

    async def handle_message(self, message: dict[str, object]) -> None:
        participant = self._participant
        if participant.closed:
            return
        kind = message.get("type")
        if kind == "offer":
            await participant.handle_offer(_string_field(message, "sdp"))
        elif kind == "answer":
            await participant.handle_answer(_string_field(message, "sdp"))
        elif kind == "candidate":
            candidate = message.get("candidate")
            if candidate is None:
                await participant.end_of_candidates()
                return
            if not isinstance(candidate, dict):
                raise SignallingError("bad_message", "candidate must be an object or null")
            value = candidate.get("candidate")
            if not isinstance(value, str):
                raise SignallingError("bad_message", "candidate.candidate must be a string")
            if value == "":
                await participant.end_of_candidates()
                return
            await participant.add_remote_candidate(value)
        elif kind == "mute":
            track_kind = message.get("kind")
            muted = message.get("muted")
            if track_kind not in ("audio", "video") or not isinstance(muted, bool):
                raise SignallingError(
                    "bad_message", "mute needs kind 'audio' or 'video' and a boolean muted"
                )
            await participant.set_muted(str(track_kind), muted)
        elif kind == "video_layout":
            participant.set_layout(_read_layout(message.get("tracks")))
        elif kind == "audio_only":
            enabled = message.get("enabled")
            if not isinstance(enabled, bool):
                raise SignallingError("bad_message", "audio_only needs a boolean 'enabled'")
            await participant.set_audio_only(enabled)
        elif kind == "leave":
            await participant.close("left", 1000)
        elif kind == "ping":
            await participant.send({"type": "pong"})
        elif kind == "join":
            raise SignallingError("unexpected_message", "already joined")
        else:
            raise SignallingError("unknown_type", f"unknown message type: {str(kind)[:40]!r}")

    async def signalling_lost(self) -> None:
        self._participant.signalling_lost()

    async def close(self, reason: str = "left") -> None:
        await self._participant.close(reason)

    async def wait_closed(self) -> None:
        await self._participant.wait_closed()


MAX_LAYOUT_TRACKS = 64
MAX_PIXELS = 16384


def _read_layout(tracks: object) -> dict[str, tuple[int, int, bool]]:
    """Check a video_layout message: {mid: {width, height, visible}}."""
    if not isinstance(tracks, dict) or len(tracks) > MAX_LAYOUT_TRACKS:
        raise SignallingError("bad_message", "video_layout needs 'tracks': an object of mids")
    layout: dict[str, tuple[int, int, bool]] = {}
    for mid, shown in tracks.items():
        if not isinstance(mid, str) or len(mid) > 32 or not isinstance(shown, dict):
            raise SignallingError("bad_message", "video_layout tracks are {mid: {...}}")
        width, height, visible = shown.get("width"), shown.get("height"), shown.get("visible")
        if (
            not isinstance(width, int)
            or not isinstance(height, int)
            or isinstance(width, bool)
            or isinstance(height, bool)
            or not 0 <= width <= MAX_PIXELS
            or not 0 <= height <= MAX_PIXELS
            or not isinstance(visible, bool)
        ):
            raise SignallingError(
                "bad_message", "video_layout needs whole-number width, height and boolean visible"
            )
        layout[mid] = (width, height, visible)
    return layout


def _string_field(message: dict[str, object], name: str) -> str:
    value = message.get(name)
    if not isinstance(value, str):
        raise SignallingError("bad_message", f"'{name}' must be a string")
    return value


class Sfu:
    """All rooms of this process."""

    def __init__(self, config: SfuConfig) -> None:
        self.config = config
        self.rooms: dict[str, Room] = {}
        self._closed = False
        self._join_lock: dict[str, asyncio.Lock] = {}
        self._finished = MediaCounters()
        # Rooms being recorded: recording id and the recorder's UDP port on 127.0.0.1. Kept
        # apart from the rooms, so a room that empties and fills again is recorded again.
        self.recordings: dict[str, tuple[str, int]] = {}

    async def set_recording(self, room_id: str, recording_id: str | None, port: int = 0) -> None:
        """Record a room's media (to the recorder listening on `port`) or stop (None)."""
        if recording_id is None:
            self.recordings.pop(room_id, None)
        else:
            self.recordings[room_id] = (recording_id, port)
        room = self.rooms.get(room_id)
        if room is not None:
            await room.set_recording(recording_id, port)

    def _room_empty(self, room: Room) -> None:
        if self.rooms.get(room.id) is room:
            del self.rooms[room.id]
            self._join_lock.pop(room.id, None)

    async def join(
        self, room_id: str, identity: str, name: str, role: str, send: Send
    ) -> ParticipantSession:
        if self._closed:
            raise SignallingError("server_shutdown", "the server is stopping", close_code=4503)
        lock = self._join_lock.setdefault(room_id, asyncio.Lock())
        async with lock:
            room = self.rooms.get(room_id)
            if room is None:
                room = Room(room_id, self.config, self._room_empty, self._finished)
                self.rooms[room_id] = room
                recording = self.recordings.get(room_id)
                if recording is not None:
                    await room.set_recording(*recording)
            try:
                participant = await room.join(identity, name, role, send)
            except BaseException:
                if not room.participants:
                    self._room_empty(room)
                    await room.close()
                raise
        return ParticipantSession(participant)

    def room_snapshot(self, room_id: str) -> dict[str, object] | None:
        room = self.rooms.get(room_id)
        if room is None or not room.participants:
            return None
        return room.snapshot()

    def counters(self) -> MediaCounters:
        """Totals since the process started: everyone who left plus everyone still here."""
        totals = MediaCounters()
        totals.add(self._finished)
        for room in self.rooms.values():
            for participant in room.participants.values():
                totals.add(participant_counters(participant))
        return totals

    def gauges(self) -> dict[str, int]:
        """What is there now."""
        participants = [p for room in self.rooms.values() for p in room.participants.values()]
        return {
            "rooms": len(self.rooms),
            "participants": len(participants),
            "published_tracks": sum(len(p.publications) for p in participants),
            "subscribed_tracks": sum(len(p.downtracks) for p in participants),
        }

    def stats(self) -> dict[str, object]:
        counters = self.counters()
        return {
            **self.gauges(),
            "packets_in": counters.packets_in,
            "bytes_in": counters.bytes_in,
            "packets_forwarded": counters.packets_out,
            "bytes_forwarded": counters.bytes_out,
            "retransmissions": counters.retransmissions,
            "nacks_received": counters.nacks_received,
            "nacks_sent": counters.nacks_sent,
            "keyframe_requests": counters.keyframe_requests,
            "layer_switches": counters.layer_switches,
            "dropped": dict(counters.dropped),
        }

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for room in list(self.rooms.values()):
            await room.close()
        self.rooms.clear()
