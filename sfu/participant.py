"""A participant: the lifecycle of one person in a room, and the wiring of what carries its media.

The objects that own the state (see docs/architecture.md, "Packet path"):

* `Ingress` (ingress.py): the participant's incoming RTP/RTCP, its publications and their streams;
* `Negotiation` (negotiation.py): the m-lines of its session description, offer and answer;
* `Downlink` (downlink.py): its down tracks, their layers, and its browser's feedback on them;
* `RtcpTimer` (rtcp_timer.py): feedback, reports and liveness every 50 ms, in a task it owns;
* `MediaTransport` (aiortc_adapter.py): ICE, DTLS and SRTP.

A packet goes adapter → ingress → published stream → down tracks → their sinks; the participant is
not on that path. It keeps the lifecycle (prepare, grace period, close), the signalling socket,
and the wiring: a down track starts forwarding only once the page has answered an offer that
contains it and the transport is connected, so the browser never sees an SSRC it does not know.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from sfu.aiortc_adapter import MediaTransport
from sfu.clock import now_ms
from sfu.config import SfuConfig
from sfu.downlink import Downlink
from sfu.downtrack import DownTrack
from sfu.errors import SignallingError
from sfu.ingress import Ingress
from sfu.negotiation import Negotiation
from sfu.publication import Publication
from sfu.rtcp import build_bye, build_pli
from sfu.rtcp_timer import RtcpTimer
from sfu.sdp import LocalTransport

if TYPE_CHECKING:
    from sfu.room import Room

logger = logging.getLogger(__name__)

SendMessage = Callable[[dict[str, object]], Awaitable[None]]
MAX_REMOTE_CANDIDATES = 32


class Participant:
    """One person in a room. Owns its transport, its timer and its grace-period task."""

    def __init__(
        self,
        room: Room,
        identity: str,
        name: str,
        role: str,
        send: SendMessage,
        config: SfuConfig,
    ) -> None:
        self.room = room
        self.id = secrets.token_urlsafe(9)
        self.identity = identity
        self.name = name
        self.role = role
        self.config = config
        self._send = send
        self.cname = secrets.token_hex(8)
        self.negotiation = Negotiation()
        self.rtcp_ssrc = self.negotiation.new_ssrc()
        self.downlink = Downlink(self._notify)
        self.ingress = Ingress(
            self,
            self.id,
            config.keyframe_request_interval_ms,
            room.speaker,
            self.downlink,
            new_track_id=lambda: secrets.token_urlsafe(9),
        )
        self.transport = MediaTransport(
            config.rtc_ips, self.ingress.on_rtp, self.ingress.on_rtcp, self._on_transport_state
        )
        self.created_ms = now_ms()
        self.timer = RtcpTimer(
            self.transport,
            self.ingress,
            self.downlink,
            config,
            self.rtcp_ssrc,
            self.cname,
            self.created_ms,
            notify=self._notify,
            expire=lambda: self._close_soon("disconnected"),
        )
        self._local_candidates: list[str] = []
        self.close_code = 1000
        self.close_reason = ""
        self._closed = asyncio.Event()
        self._closing = False
        self._grace_task: asyncio.Task[None] | None = None
        self._remote_candidates = 0

    # -- what the others read ----------------------------------------------------------------

    @property
    def publications(self) -> dict[str, Publication]:
        """The tracks this participant publishes, by mid."""
        return self.ingress.publications

    @property
    def downtracks(self) -> dict[str, DownTrack]:
        """The tracks this participant receives, by mid in its SDP."""
        return self.downlink.downtracks

    @property
    def last_packet_ms(self) -> int:
        return self.ingress.last_packet_ms

    @property
    def nacks_received(self) -> int:
        return self.downlink.nacks_received

    @property
    def nacks_sent(self) -> int:
        return self.timer.nacks_sent

    @property
    def tick_errors(self) -> int:
        return self.timer.tick_errors

    @property
    def rtcp_errors(self) -> int:
        return self.ingress.rtcp_errors

    @property
    def audio_only(self) -> bool:
        return self.downlink.audio_only

    # -- lifecycle ---------------------------------------------------------------------------

    async def prepare(self) -> None:
        self._local_candidates = await self.transport.gather()
        self.timer.start()

    @property
    def closed(self) -> bool:
        return self._closing

    @property
    def answered(self) -> bool:
        """Whether the SFU has answered the page's one offer: from then on the SFU makes offers."""
        return self.negotiation.answered

    async def wait_closed(self) -> None:
        await self._closed.wait()

    async def close(self, reason: str = "left", close_code: int = 1000) -> None:
        """Leave the room and stop everything this participant owns. Idempotent."""
        if self._closing:
            await self._closed.wait()
            return
        self._closing = True
        self.close_reason = reason
        self.close_code = close_code
        grace = self._grace_task
        self._grace_task = None
        if grace is not None and grace is not asyncio.current_task():
            grace.cancel()
            try:
                await grace
            except asyncio.CancelledError:
                pass
        await self.timer.close()
        try:
            await self.room.remove(self, reason)
        finally:
            await self.transport.close()
            self._closed.set()

    def signalling_lost(self) -> None:
        """The page's socket closed without leave: remove after the grace period."""
        if self._closing or self._grace_task is not None:
            return
        self._grace_task = asyncio.create_task(self._grace_period())

    async def _grace_period(self) -> None:
        await asyncio.sleep(self.config.disconnect_grace_ms / 1000)
        self._grace_task = None
        asyncio.get_running_loop().call_soon(self._close_soon, "disconnected")

    def _close_soon(self, reason: str) -> None:
        if not self._closing:
            self.room.spawn(self.close(reason, 1000))

    # -- signalling --------------------------------------------------------------------------

    async def send(self, message: dict[str, object]) -> None:
        if self._closing and message.get("type") not in ("error",):
            return
        try:
            await self._send(message)
        except Exception:  # the socket may be gone; the grace period handles that
            logger.debug("could not send a signalling message", exc_info=True)

    def _notify(self, message: dict[str, object]) -> None:
        """Send a message from synchronous code (the timer, allocation) in a room task."""
        self.room.spawn(self.send(message))

    def describe(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "role": self.role,
            "tracks": [publication.describe() for publication in self.publications.values()],
        }

    async def handle_offer(self, sdp: str) -> None:
        remote, offered = self.negotiation.take_offer(sdp)
        self.ingress.add_offered(offered)
        self.transport.start(
            remote.ice_ufrag, remote.ice_pwd, remote.fingerprint_algorithm, remote.fingerprint
        )
        for candidate in remote.candidates:
            await self.add_remote_candidate(candidate)
        answer = self.negotiation.describe("active", self._local_transport())
        await self.send({"type": "answer", "sdp": answer})
        self.negotiation.answer_sent()
        await self.room.publications_added(self)

    async def handle_answer(self, sdp: str) -> None:
        self.negotiation.take_answer(sdp)
        for downtrack in self.downtracks.values():
            self._activate(downtrack)
        if self.negotiation.offer_pending:
            await self._send_offer()

    async def add_remote_candidate(self, value: str) -> None:
        """Add a remote candidate, ignoring those outside the allowed networks (and mDNS names)."""
        try:
            address, protocol = MediaTransport.candidate_address(value)
        except (ValueError, IndexError) as exc:
            raise SignallingError(
                "bad_candidate", "the ICE candidate cannot be read", fatal=False
            ) from exc
        if protocol != "udp" or not self.config.allows(address):
            return
        self._remote_candidates += 1
        if self._remote_candidates > MAX_REMOTE_CANDIDATES:
            raise SignallingError(
                "bad_candidate", "too many ICE candidates; this one is ignored", fatal=False
            )
        try:
            await self.transport.add_remote_candidate(value)
        except ValueError as exc:  # after end-of-candidates
            raise SignallingError("bad_candidate", str(exc), fatal=False) from exc

    async def end_of_candidates(self) -> None:
        try:
            await self.transport.end_of_candidates()
        except ValueError:
            pass

    async def set_muted(self, kind: str, muted: bool) -> None:
        changed = False
        for publication in self.publications.values():
            if publication.kind == kind and publication.muted != muted:
                publication.muted = muted
                changed = True
        if changed:
            await self.room.broadcast(
                {"type": "participant_updated", "participant": self.describe()}, exclude=None
            )

    def set_layout(self, layout: dict[str, tuple[int, int, bool]]) -> None:
        """The page's report of how it shows each remote video (by mid)."""
        self.downlink.set_layout(layout)

    async def set_audio_only(self, enabled: bool) -> None:
        self.downlink.set_audio_only(enabled)

    def _local_transport(self) -> LocalTransport:
        algorithm, fingerprint = self.transport.fingerprint
        return LocalTransport(
            ice_ufrag=self.transport.ice_ufrag,
            ice_pwd=self.transport.ice_pwd,
            fingerprint_algorithm=algorithm,
            fingerprint=fingerprint,
            candidates=self._local_candidates,
        )

    async def renegotiate(self) -> None:
        """Send a new offer now, or after the page answers the one in flight."""
        if self._closing or not self.negotiation.offer_due():
            return
        await self._send_offer()

    async def _send_offer(self) -> None:
        if self.negotiation.next_offer() is None:
            return  # nothing changed since the page last agreed
        tracks = {
            mid: {
                "participant_id": downtrack.publication.publisher.id,
                "track_id": downtrack.publication.track_id,
                "kind": downtrack.publication.kind,
            }
            for mid, downtrack in self.downtracks.items()
        }
        sdp = self.negotiation.describe("actpass", self._local_transport())
        await self.send({"type": "offer", "sdp": sdp, "tracks": tracks})

    # -- subscriptions -----------------------------------------------------------------------

    def subscribe(self, publication: Publication) -> DownTrack:
        """Add a down track for a publication (negotiated by the next offer); idempotent."""
        if not self.negotiation.answered:
            raise RuntimeError("subscriptions come after the answer to the page's own offer")
        existing = self.downlink.find(publication)
        if existing is not None:
            return existing
        line = self.negotiation.add_send_line(publication)
        downtrack = DownTrack(
            publication,
            mid=line.mid,
            ssrc=line.ssrc,
            payload_type=line.payload_type,
            sink=self.transport,
            initial_seq=secrets.randbits(16),
            initial_timestamp=secrets.randbits(32),
            abs_send_time_id=self.negotiation.abs_send_time_id,
        )
        self.downlink.add(downtrack)
        publication.add_downtrack(downtrack)
        return downtrack

    def unsubscribe(self, downtrack: DownTrack) -> None:
        downtrack.active = False
        downtrack.publication.remove_downtrack(downtrack)
        self.downlink.remove(downtrack)
        self.negotiation.remove_send_line(downtrack.mid)
        if self.transport.state == "connected":
            self.transport.send_rtcp(build_bye([downtrack.ssrc]))

    def _activate(self, downtrack: DownTrack) -> None:
        """Start forwarding once the page knows the track and the transport is up."""
        if (
            downtrack.active
            or downtrack.mid not in self.negotiation.negotiated_mids
            or self.transport.state != "connected"
            or self._closing
        ):
            return
        downtrack.active = True
        self.downlink.allocate_soon()  # decide its layer at the next tick
        downtrack.publication.request_keyframe(now_ms(), downtrack.target_layer)

    def _on_transport_state(self, state: str) -> None:
        if state == "connected":
            now = now_ms()
            self.ingress.last_packet_ms = now
            self.downlink.connected_ms = now
            for downtrack in self.downtracks.values():
                self._activate(downtrack)
            for publication in self.publications.values():
                publication.request_keyframe(now_ms())
        elif state in ("failed", "closed"):
            self._close_soon("disconnected")

    # -- what publications need (sfu.publication.Publisher) -----------------------------------

    def send_pli(self, media_ssrc: int) -> None:
        self.transport.send_rtcp(build_pli(self.rtcp_ssrc, media_ssrc))
