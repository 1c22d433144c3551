"""The part of the SFU's interface the control plane uses (see sfu/service.py).

Written as Protocols so that control/ type-checks on its own and tests can use small fakes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

Message = dict[str, Any]
Send = Callable[[Message], Awaitable[None]]


class SessionLike(Protocol):
    """One participant's session in the SFU (`sfu.service.ParticipantSession`)."""

    @property
    def participant_id(self) -> str: ...

    @property
    def close_code(self) -> int:
        """The WebSocket close code the SFU wants once the session has ended."""
        ...

    async def handle_message(self, message: Message) -> None:
        """Handle a message from the page; raises `sfu.errors.SignallingError` on bad input."""
        ...

    async def signalling_lost(self) -> None: ...

    async def close(self, reason: str = "left") -> None: ...

    async def wait_closed(self) -> None: ...


class SfuLike(Protocol):
    """The SFU (`sfu.service.Sfu`)."""

    async def join(
        self, room_id: str, identity: str, name: str, role: str, send: Send
    ) -> SessionLike:
        """Join a room; returns a `SessionLike`. May raise `SignallingError` (room_full)."""
        ...

    def room_snapshot(self, room_id: str) -> dict[str, Any] | None: ...

    async def close(self) -> None: ...
