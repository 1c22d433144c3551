"""A small fake of `sfu.service.Sfu` / `ParticipantSession` following /tmp/sfu_contract.md.

Only for the control plane's tests: it records what the control plane does and answers like the
SFU would (joined, pong, replaced, room_full), without any media.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from control.app import create_app
from control.config import Settings
from control.rooms import RoomRegistry
from control.sfu_types import Message, Send
from control.signalling import SignallingOptions
from sfu.errors import SignallingError
from sfu.metrics import MediaCounters

API_KEY = "test-api-key-0123456789abcdef"
TOKEN_SECRET = "0123456789abcdef" * 4
BASE_URL = "https://balie.example.nl"

KNOWN_TYPES = frozenset({"offer", "answer", "candidate", "mute", "leave", "ping", "join"})

_ids = itertools.count(1)


def make_settings(data_dir: Path) -> Settings:
    return Settings(
        host="127.0.0.1",
        port=8080,
        data_dir=data_dir,
        api_key=API_KEY,
        token_secret=TOKEN_SECRET,
        base_url=BASE_URL,
    )


class FakeSession:
    def __init__(
        self, sfu: FakeSfu, room: str, identity: str, name: str, role: str, send: Send
    ) -> None:
        self.participant_id = f"p{next(_ids)}"
        self.close_code = 1000
        self.room = room
        self.identity = identity
        self.name = name
        self.role = role
        self.send = send
        self.received: list[Message] = []
        self.close_reason: str | None = None
        self.lost = asyncio.Event()
        self._sfu = sfu
        self._closed = asyncio.Event()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def describe(self) -> dict[str, Any]:
        return {"id": self.participant_id, "name": self.name, "role": self.role, "tracks": []}

    async def handle_message(self, message: Message) -> None:
        self.received.append(message)
        kind = message["type"]
        if kind not in KNOWN_TYPES:
            raise SignallingError("unknown_type", f"unknown message type {kind!r}")
        if kind == "ping":
            await self.send({"type": "pong"})
        elif kind == "leave":
            await self.close("left")
        elif kind == "candidate" and message.get("candidate") == "garbage":
            raise SignallingError("bad_candidate", "cannot parse candidate", fatal=False)

    async def signalling_lost(self) -> None:
        self.lost.set()

    async def close(self, reason: str = "left") -> None:
        if self._closed.is_set():
            return
        self.close_reason = reason
        self._sfu.remove(self)
        self._closed.set()

    async def wait_closed(self) -> None:
        await self._closed.wait()


class FakeSfu:
    def __init__(self, max_participants_per_room: int = 8) -> None:
        self.max_participants_per_room = max_participants_per_room
        self.rooms: dict[str, list[FakeSession]] = {}
        self.sessions: list[FakeSession] = []
        self.closed = False
        self.media_counters = MediaCounters()

    async def join(
        self, room_id: str, identity: str, name: str, role: str, send: Send
    ) -> FakeSession:
        members = self.rooms.setdefault(room_id, [])
        for old in list(members):
            if old.identity == identity:
                old.close_code = 4409
                await old.send(
                    {
                        "type": "error",
                        "code": "replaced",
                        "message": "joined elsewhere",
                        "fatal": True,
                    }
                )
                await old.close("replaced")
        if len(members) >= self.max_participants_per_room:
            raise SignallingError("room_full", "the room is full", close_code=4429)
        session = FakeSession(self, room_id, identity, name, role, send)
        await send(
            {
                "type": "joined",
                "room": room_id,
                "participant": session.describe(),
                "participants": [m.describe() for m in members],
                "ice_servers": [],
            }
        )
        members.append(session)
        self.sessions.append(session)
        return session

    def remove(self, session: FakeSession) -> None:
        members = self.rooms.get(session.room, [])
        if session in members:
            members.remove(session)
        if not members:
            self.rooms.pop(session.room, None)

    def room_snapshot(self, room_id: str) -> dict[str, Any] | None:
        members = self.rooms.get(room_id)
        if not members:
            return None
        return {"room": room_id, "participants": [m.describe() for m in members]}

    def counters(self) -> MediaCounters:
        return self.media_counters

    def gauges(self) -> dict[str, int]:
        return {
            "rooms": len(self.rooms),
            "participants": sum(len(members) for members in self.rooms.values()),
            "published_tracks": 0,
            "subscribed_tracks": 0,
        }

    async def close(self) -> None:
        self.closed = True
        for session in list(self.sessions):
            await session.close("left")


async def no_send(message: Message) -> None:
    """A `send` that drops everything (for sessions joined directly in tests)."""


class Harness:
    """An app under test with its fake SFU and room store."""

    def __init__(
        self,
        client: TestClient[web.Request, web.Application],
        settings: Settings,
        sfu: FakeSfu,
        store: RoomRegistry,
    ) -> None:
        self.client = client
        self.settings = settings
        self.sfu = sfu
        self.store = store

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.settings.api_key}"}


@contextlib.asynccontextmanager
async def running_app(
    data_dir: Path,
    *,
    signalling: SignallingOptions | None = None,
    web_dir: Path | None = None,
    sfu: FakeSfu | None = None,
) -> AsyncIterator[Harness]:
    settings = make_settings(data_dir)
    sfu = sfu if sfu is not None else FakeSfu()
    store = RoomRegistry()
    app = create_app(
        settings,
        sfu,
        store=store,
        signalling=signalling or SignallingOptions(heartbeat=None),
        web_dir=web_dir,
    )
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield Harness(client, settings, sfu, store)
