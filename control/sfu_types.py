"""The part of the SFU's interface the control plane uses (see sfu/service.py).

Written as Protocols so that control/ type-checks on its own and tests can use small fakes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
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


class MediaCountersLike(Protocol):
    """The SFU's media totals since the process started (`sfu.metrics.MediaCounters`).

    Every value only ever grows: totals of participants who left are kept.
    """

    @property
    def packets_in(self) -> int: ...
    @property
    def bytes_in(self) -> int: ...
    @property
    def rtx_packets_in(self) -> int: ...
    @property
    def packets_out(self) -> int: ...
    @property
    def bytes_out(self) -> int: ...
    @property
    def retransmissions(self) -> int: ...
    @property
    def nacks_received(self) -> int: ...
    @property
    def nacks_sent(self) -> int: ...
    @property
    def keyframe_requests(self) -> int: ...
    @property
    def layer_switches(self) -> int: ...
    @property
    def dropped(self) -> Mapping[str, int]:
        """Packets not forwarded, by reason (lower-case names)."""
        ...


class SfuLike(Protocol):
    """The SFU (`sfu.service.Sfu`)."""

    async def join(
        self, room_id: str, identity: str, name: str, role: str, send: Send
    ) -> SessionLike:
        """Join a room; returns a `SessionLike`. May raise `SignallingError` (room_full)."""
        ...

    def room_snapshot(self, room_id: str) -> dict[str, Any] | None: ...

    async def set_recording(self, room_id: str, recording_id: str | None, port: int = 0) -> None:
        """Send the room's media to the recorder on 127.0.0.1:`port`, or stop (None).

        Holds for the room whenever it has participants, also after it emptied and filled again;
        every participant's page is told (`recording` message), late joiners too.
        """
        ...

    def counters(self) -> MediaCountersLike:
        """Media totals since the process started; cheap enough to call on every scrape."""
        ...

    def gauges(self) -> dict[str, int]:
        """What is there now: rooms, participants, published_tracks, subscribed_tracks."""
        ...

    async def close(self) -> None: ...
