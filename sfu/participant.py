"""A participant: one media transport, the tracks it publishes and the down tracks it receives.

Negotiation: the page offers its own tracks once; after that the SFU makes every offer, one at a
time. A down track starts forwarding only once the page has answered an offer that contains it and
the transport is connected, so the browser never sees an SSRC it does not know.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import struct
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from sfu.aiortc_adapter import MediaTransport
from sfu.allocation import LOW_BANDWIDTH_BPS, BandwidthAllocator, VideoDemand, layer_for_size
from sfu.config import SfuConfig
from sfu.downtrack import DownTrack
from sfu.errors import SignallingError
from sfu.publication import Publication, PublishedStream
from sfu.rtcp import (
    Bye,
    FullIntraRequest,
    Nack,
    PictureLossIndication,
    ReceiverReport,
    Remb,
    RtcpError,
    SenderReport,
    build_bye,
    build_nack,
    build_pli,
    build_receiver_report,
    build_remb,
    build_sdes_cname,
    parse_rtcp,
)
from sfu.rtp import RtpPacketView, parse_rtp, read_header_extension
from sfu.sdp import (
    ABS_SEND_TIME_URI,
    AUDIO_LEVEL_URI,
    DEFAULT_OPUS,
    DEFAULT_VP8,
    MID_URI,
    REPAIRED_RID_URI,
    RID_URI,
    SEND_VIDEO_FEEDBACK,
    TWCC_URI,
    Codec,
    LocalMediaLine,
    LocalTransport,
    SdpError,
    build_sdp,
    parse_sdp,
    read_answer,
    read_offer,
)
from sfu.seq import SEQ_MODULO
from sfu.twcc import TwccRecorder

if TYPE_CHECKING:
    from sfu.room import Room

logger = logging.getLogger(__name__)

SendMessage = Callable[[dict[str, object]], Awaitable[None]]
TICK_MS = 50
REPORT_INTERVAL_MS = 1000
ALLOCATION_INTERVAL_MS = 500
LAYER_PAUSE_AFTER_MS = 10000
AUDIO_BITRATE_BPS = 40_000
# A browser's receive-side estimate starts from a guess; it means something after a few seconds.
ESTIMATE_WARMUP_MS = 5000
ESTIMATE_WINDOW_MS = 3000
ESTIMATE_FALL = 0.85
MAX_REMOTE_CANDIDATES = 32
SSRC = struct.Struct("!I")


def now_ms() -> int:
    return time.monotonic_ns() // 1_000_000


def random_ssrc(taken: set[int]) -> int:
    while True:
        ssrc = secrets.randbits(32)
        if ssrc and ssrc not in taken:
            taken.add(ssrc)
            return ssrc


class Participant:
    """One person in a room. Owns its transport, its timer task and its grace-period task."""

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
        self._ssrcs: set[int] = set()
        self.rtcp_ssrc = random_ssrc(self._ssrcs)
        self.transport = MediaTransport(
            config.rtc_ips, self._on_rtp, self._on_rtcp, self._on_transport_state
        )
        self._local_candidates: list[str] = []
        self.publications: dict[str, Publication] = {}  # by mid
        self._streams: dict[int, PublishedStream] = {}  # by incoming SSRC
        self._rtx_streams: dict[int, PublishedStream] = {}  # by incoming RTX SSRC
        self._publication_by_pt: dict[int, Publication] = {}
        self._mid_extension_id: int | None = None
        self._rid_extension_id: int | None = None
        self._repaired_rid_extension_id: int | None = None
        self._twcc_extension_id: int | None = None
        self._audio_level_extension_id: int | None = None
        self._abs_send_time_id: int | None = None
        self._twcc = TwccRecorder()
        # Downlink: the subscriber's browser estimate (REMB), the page's layout, audio-only mode.
        self.downlink_estimate_bps: int | None = None  # None until the browser's REMB settles
        self._downlink_estimates: deque[tuple[int, int]] = deque()
        self._connected_ms = 0
        self._allocator = BandwidthAllocator()
        self._layout: dict[str, tuple[int, int, bool]] = {}  # mid -> (width, height, visible)
        self.audio_only = False
        self._low_bandwidth = False
        self._next_allocation_ms = 0
        self._layer_unwanted_since: dict[tuple[str, int], int] = {}
        self.downtracks: dict[str, DownTrack] = {}  # by mid in this participant's SDP
        self._downtracks_by_ssrc: dict[int, DownTrack] = {}
        self._lines: list[LocalMediaLine] = []
        self._session_id = secrets.randbits(62)
        self._sdp_version = 0
        self._offered = False  # the page's one offer has come
        self._answered = False  # ... and the SFU has answered it
        self._negotiated: tuple[tuple[str, str, int | None], ...] = ()
        self._offer_in_flight: list[str] | None = None  # mids of the SFU's unanswered offer
        self._offered_signature: tuple[tuple[str, str, int | None], ...] = ()
        self._negotiated_mids: set[str] = set()
        self._renegotiate = False
        self._audio_codec = DEFAULT_OPUS
        self._video_codec = DEFAULT_VP8
        self.created_ms = now_ms()
        self.last_packet_ms = 0
        self.close_code = 1000
        self.close_reason = ""
        self._closed = asyncio.Event()
        self._closing = False
        self._grace_task: asyncio.Task[None] | None = None
        self._timer_task: asyncio.Task[None] | None = None
        self._next_report_ms = 0
        self._last_report_ms = 0
        self.rtcp_errors = 0
        self.nacks_received = 0
        self.nacks_sent = 0
        self.tick_errors = 0
        self._remote_candidates = 0

    # -- lifecycle ---------------------------------------------------------------------------

    async def prepare(self) -> None:
        self._local_candidates = await self.transport.gather()
        self._timer_task = asyncio.create_task(self._run_timer())

    @property
    def closed(self) -> bool:
        return self._closing

    @property
    def answered(self) -> bool:
        """Whether the SFU has answered the page's one offer: from then on the SFU makes offers."""
        return self._answered

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
        current = asyncio.current_task()
        for task in (self._grace_task, self._timer_task):
            if task is not None and task is not current and not task.done():
                task.cancel()
        for task in (self._grace_task, self._timer_task):
            if task is not None and task is not current:
                try:
                    await task
                except asyncio.CancelledError:
                    pass
        self._grace_task = None
        self._timer_task = None
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

    def describe(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "role": self.role,
            "tracks": [publication.describe() for publication in self.publications.values()],
        }

    async def handle_offer(self, sdp: str) -> None:
        if self._offered:
            raise SignallingError("unexpected_message", "only one offer per connection is allowed")
        try:
            description = parse_sdp(sdp)
            remote, offered = read_offer(description)
        except SdpError as exc:
            raise SignallingError("bad_sdp", str(exc)) from exc
        self._offered = True
        self._abs_send_time_id = _abs_send_time_id(
            {
                uri: ext_id
                for section in description.media
                for uri, ext_id in section.extmap().items()
            }
        )
        for media in offered:
            line = LocalMediaLine(
                mid=media.mid,
                kind=media.kind,
                direction=media.direction,
                codec=media.codec,
                extensions=media.extensions,
                proto=media.proto,
                formats=media.formats,
                rids=media.rids,
            )
            self._lines.append(line)
            codec = media.codec
            if codec is None:
                continue
            if media.kind == "audio":
                self._audio_codec = codec
            else:
                self._video_codec = codec
            for ext_id, uri in media.extensions:
                if uri == MID_URI:
                    self._mid_extension_id = ext_id
                elif uri == RID_URI:
                    self._rid_extension_id = ext_id
                elif uri == REPAIRED_RID_URI:
                    self._repaired_rid_extension_id = ext_id
                elif uri == TWCC_URI:
                    self._twcc_extension_id = ext_id
                elif uri == AUDIO_LEVEL_URI:
                    self._audio_level_extension_id = ext_id
            if media.direction != "recvonly":
                continue
            publication = Publication(
                self,
                track_id=secrets.token_urlsafe(9),
                kind=media.kind,
                mid=media.mid,
                payload_type=codec.payload_type,
                clock_rate=codec.clock_rate,
                keyframe_interval_ms=self.config.keyframe_request_interval_ms,
                rids=media.rids,
                rtx_payload_type=codec.rtx_payload_type,
            )
            self.publications[media.mid] = publication
            self._publication_by_pt[codec.payload_type] = publication
            if codec.rtx_payload_type is not None:
                self._publication_by_pt[codec.rtx_payload_type] = publication
            if media.ssrcs and not media.rids:
                stream = publication.add_stream(media.ssrcs[0])
                self._streams[media.ssrcs[0]] = stream
                if len(media.ssrcs) > 1 and codec.rtx_payload_type is not None:
                    stream.rtx_ssrc = media.ssrcs[1]
                    self._rtx_streams[media.ssrcs[1]] = stream
        self.transport.start(
            remote.ice_ufrag, remote.ice_pwd, remote.fingerprint_algorithm, remote.fingerprint
        )
        for candidate in remote.candidates:
            await self.add_remote_candidate(candidate)
        await self.send({"type": "answer", "sdp": self._describe("active")})
        self._negotiated = self._signature()
        self._answered = True
        await self.room.publications_added(self)

    async def handle_answer(self, sdp: str) -> None:
        if self._offer_in_flight is None:
            raise SignallingError("unexpected_message", "there is no offer to answer")
        try:
            read_answer(parse_sdp(sdp), self._offer_in_flight)
        except SdpError as exc:
            raise SignallingError("bad_sdp", str(exc)) from exc
        self._negotiated_mids.update(self._offer_in_flight)
        self._offer_in_flight = None
        self._negotiated = self._offered_signature
        for downtrack in self.downtracks.values():
            self._activate(downtrack)
        if self._renegotiate:
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

    def _describe(self, setup: str) -> str:
        self._sdp_version += 1
        algorithm, fingerprint = self.transport.fingerprint
        return build_sdp(
            session_id=self._session_id,
            version=self._sdp_version,
            setup=setup,
            transport=LocalTransport(
                ice_ufrag=self.transport.ice_ufrag,
                ice_pwd=self.transport.ice_pwd,
                fingerprint_algorithm=algorithm,
                fingerprint=fingerprint,
                candidates=self._local_candidates,
            ),
            lines=self._lines,
        )

    async def renegotiate(self) -> None:
        """Send a new offer now, or after the page answers the one in flight."""
        if self._closing:
            return
        if not self._answered or self._offer_in_flight is not None:
            self._renegotiate = True
            return
        await self._send_offer()

    def _signature(self) -> tuple[tuple[str, str, int | None], ...]:
        return tuple((line.mid, line.direction, line.ssrc) for line in self._lines)

    async def _send_offer(self) -> None:
        self._renegotiate = False
        signature = self._signature()
        if signature == self._negotiated:
            return  # nothing changed since the page last agreed
        self._offered_signature = signature
        self._offer_in_flight = [line.mid for line in self._lines]
        tracks = {
            mid: {
                "participant_id": downtrack.publication.publisher.id,
                "track_id": downtrack.publication.track_id,
                "kind": downtrack.publication.kind,
            }
            for mid, downtrack in self.downtracks.items()
        }
        await self.send({"type": "offer", "sdp": self._describe("actpass"), "tracks": tracks})

    # -- subscriptions -----------------------------------------------------------------------

    def _allocate_mid(self) -> str:
        taken = {line.mid for line in self._lines}
        index = len(self._lines)
        while str(index) in taken:
            index += 1
        return str(index)

    def subscribe(self, publication: Publication) -> DownTrack:
        """Add a down track for a publication (negotiated by the next offer); idempotent."""
        if not self._answered:
            raise RuntimeError("subscriptions come after the answer to the page's own offer")
        for existing in self.downtracks.values():
            if existing.publication is publication:
                return existing
        if publication.kind == "audio":
            codec = Codec(
                self._audio_codec.payload_type,
                "opus",
                self._audio_codec.clock_rate,
                self._audio_codec.channels,
                self._audio_codec.fmtp,
            )
            extensions: list[tuple[int, str]] = []
        else:
            codec = Codec(
                self._video_codec.payload_type, "VP8", 90000, None, None, SEND_VIDEO_FEEDBACK
            )
            extensions = (
                [(self._abs_send_time_id, ABS_SEND_TIME_URI)] if self._abs_send_time_id else []
            )
        mid = self._allocate_mid()
        ssrc = random_ssrc(self._ssrcs)
        downtrack = DownTrack(
            publication,
            mid=mid,
            ssrc=ssrc,
            payload_type=codec.payload_type,
            transport=self.transport,
            initial_seq=secrets.randbits(16),
            initial_timestamp=secrets.randbits(32),
            abs_send_time_id=self._abs_send_time_id,
        )
        self._lines.append(
            LocalMediaLine(
                mid=mid,
                kind=publication.kind,
                direction="sendonly",
                codec=codec,
                extensions=extensions,
                ssrc=ssrc,
                cname=publication.publisher.cname,
                stream_id=publication.publisher.id,
                track_id=publication.track_id,
            )
        )
        self.downtracks[mid] = downtrack
        self._downtracks_by_ssrc[ssrc] = downtrack
        publication.downtracks.append(downtrack)
        return downtrack

    def unsubscribe(self, downtrack: DownTrack) -> None:
        downtrack.active = False
        if downtrack in downtrack.publication.downtracks:
            downtrack.publication.downtracks.remove(downtrack)
        self.downtracks.pop(downtrack.mid, None)
        self._negotiated_mids.discard(downtrack.mid)
        self._layout.pop(downtrack.mid, None)
        self._allocator.forget(downtrack.mid)
        self._downtracks_by_ssrc.pop(downtrack.ssrc, None)
        for line in self._lines:
            if line.mid == downtrack.mid:
                line.direction = "inactive"
                line.ssrc = None
        if self.transport.state == "connected":
            self.transport.send_rtcp(build_bye([downtrack.ssrc]))

    def _activate(self, downtrack: DownTrack) -> None:
        """Start forwarding once the page knows the track and the transport is up."""
        if (
            downtrack.active
            or downtrack.mid not in self._negotiated_mids
            or self.transport.state != "connected"
            or self._closing
        ):
            return
        downtrack.active = True
        self._next_allocation_ms = 0  # decide its layer at the next tick
        downtrack.publication.request_keyframe(now_ms(), downtrack.target_layer)

    def _on_transport_state(self, state: str) -> None:
        if state == "connected":
            self.last_packet_ms = now_ms()
            self._connected_ms = self.last_packet_ms
            for downtrack in self.downtracks.values():
                self._activate(downtrack)
            for publication in self.publications.values():
                publication.request_keyframe(now_ms())
        elif state in ("failed", "closed"):
            self._close_soon("disconnected")

    # -- media (hot path) --------------------------------------------------------------------

    def _on_rtp(self, data: bytes, arrival_time_ms: int) -> None:
        now_ns = time.monotonic_ns()
        now = now_ns // 1_000_000
        self.last_packet_ms = now
        packet = parse_rtp(data)
        if packet is None:
            return
        extension = packet.extension
        if extension and self._twcc_extension_id is not None:
            value = read_header_extension(
                packet.extension_profile, extension, self._twcc_extension_id
            )
            if value is not None and len(value) == 2:
                self._twcc.record((value[0] << 8) | value[1], now_ns // 1000)
        stream = self._streams.get(packet.ssrc)
        if stream is None:
            stream = self._rtx_streams.get(packet.ssrc)
            if stream is None:
                stream = self._learn_stream(packet)
                if stream is None:
                    return
            if stream.ssrc != packet.ssrc:  # a retransmission in RTX (RFC 4588)
                restored = _unwrap_rtx(packet, stream)
                if restored is None:
                    return
                packet = restored
        publication = stream.publication
        if self._audio_level_extension_id is not None and extension and not stream.is_video:
            level = read_header_extension(
                packet.extension_profile, extension, self._audio_level_extension_id
            )
            if level:
                self.room.speaker.level(self.id, level[0] & 0x7F, now)
        restarts = stream.restarts
        if not stream.receive(packet, now):
            return
        if stream.restarts != restarts:
            publication.request_keyframe(now, stream.layer)
        abs_send_time = ((now_ns // 1000) << 18) // 1_000_000
        for downtrack in publication.downtracks:
            out = downtrack.forward(stream, packet, now, abs_send_time)
            if out is not None:
                downtrack.transport.send_rtp(out)

    def _learn_stream(self, packet: RtpPacketView) -> PublishedStream | None:
        """An SSRC not in the SDP: find its publication and layer from header extensions.

        Chrome sends the mid and rid extensions only in the first packets of a stream, so the
        mapping is remembered. An RTX stream names its layer with the repaired rid.
        """
        mid = self._extension_text(packet, self._mid_extension_id)
        publication = self.publications.get(mid) if mid is not None else None
        if publication is None:
            publication = self._publication_by_pt.get(packet.payload_type)
        if publication is None or len(publication.streams) + len(self._rtx_streams) >= 16:
            return None
        repaired = self._extension_text(packet, self._repaired_rid_extension_id)
        if repaired is not None or packet.payload_type == publication.rtx_payload_type:
            layer = publication.layer_of_rid(repaired) if repaired is not None else 0
            media = publication.layers[layer] if 0 <= layer < publication.layer_count else None
            if media is None:
                return None  # the media stream of that layer is not known yet
            media.rtx_ssrc = packet.ssrc
            self._rtx_streams[packet.ssrc] = media
            return media
        layer = 0
        rid = ""
        if publication.rids:
            rid = self._extension_text(packet, self._rid_extension_id) or ""
            layer = publication.layer_of_rid(rid)
            if layer < 0:
                return None
        stream = publication.add_stream(packet.ssrc, layer, rid)
        self._streams[packet.ssrc] = stream
        if stream.restarts:
            publication.request_keyframe(now_ms(), layer)
        return stream

    @staticmethod
    def _extension_text(packet: RtpPacketView, ext_id: int | None) -> str | None:
        if ext_id is None or not packet.extension:
            return None
        value = read_header_extension(packet.extension_profile, packet.extension, ext_id)
        return value.decode("ascii", errors="replace") if value else None

    def _on_rtcp(self, data: bytes) -> None:
        now = now_ms()
        self.last_packet_ms = now
        try:
            for message in parse_rtcp(data):
                if isinstance(message, SenderReport):
                    stream = self._streams.get(message.ssrc)
                    if stream is not None:
                        stream.sr_clock.update(message.ntp_timestamp, message.rtp_timestamp, now)
                elif isinstance(message, ReceiverReport):
                    for block in message.reports:
                        downtrack = self._downtracks_by_ssrc.get(block.ssrc)
                        if downtrack is not None:
                            downtrack.receiver_report(block.fraction_lost / 256)
                elif isinstance(message, Nack):
                    self.nacks_received += 1
                    downtrack = self._downtracks_by_ssrc.get(message.media_ssrc)
                    if downtrack is not None and downtrack.active:
                        abs_send_time = ((time.monotonic_ns() // 1000) << 18) // 1_000_000
                        for packet in downtrack.retransmit(message.lost, abs_send_time, now):
                            self.transport.send_rtp(packet)
                elif isinstance(message, PictureLossIndication):
                    downtrack = self._downtracks_by_ssrc.get(message.media_ssrc)
                    if downtrack is not None:
                        downtrack.publication.request_keyframe(now, downtrack.target_layer)
                elif isinstance(message, FullIntraRequest):
                    for ssrc in message.media_ssrcs:
                        downtrack = self._downtracks_by_ssrc.get(ssrc)
                        if downtrack is not None:
                            downtrack.publication.request_keyframe(now, downtrack.target_layer)
                elif isinstance(message, Remb):
                    self._downlink_estimates.append((now, message.bitrate_bps))
                    while now - self._downlink_estimates[0][0] > ESTIMATE_WINDOW_MS:
                        self._downlink_estimates.popleft()
                    if now - self._connected_ms >= ESTIMATE_WARMUP_MS:
                        self.downlink_estimate_bps = message.bitrate_bps
                elif isinstance(message, Bye):
                    pass
        except RtcpError:
            self.rtcp_errors += 1

    def send_pli(self, media_ssrc: int) -> None:
        self.transport.send_rtcp(build_pli(self.rtcp_ssrc, media_ssrc))

    # -- what each subscriber gets -----------------------------------------------------------

    def set_layout(self, layout: dict[str, tuple[int, int, bool]]) -> None:
        """The page's report of how it shows each remote video (by mid)."""
        for mid, shown in layout.items():
            if mid in self.downtracks:
                self._layout[mid] = shown
        self._next_allocation_ms = 0

    async def set_audio_only(self, enabled: bool) -> None:
        self.audio_only = enabled
        self._next_allocation_ms = 0

    def allocate(self, now: int) -> None:
        """Choose the layer of every video this participant receives."""
        demands = []
        audio_tracks = 0
        for mid, downtrack in self.downtracks.items():
            publication = downtrack.publication
            if publication.kind != "video":
                audio_tracks += 1
                continue
            width, height, visible = self._layout.get(mid, (1280, 720, True))
            demands.append(
                VideoDemand(
                    key=mid,
                    visible=visible and not self.audio_only,
                    max_layer=layer_for_size(
                        width, height, publication.layer_sizes(), publication.layer_count
                    ),
                    bitrates=publication.layer_bitrates(now),
                    flowing=publication.flowing_layers(now),
                    current_layer=downtrack.current_layer,
                )
            )
        loss = max((d.fraction_lost for d in self.downtracks.values()), default=0.0)
        estimate = self.downlink_estimate_bps
        falling = estimate is not None and estimate < ESTIMATE_FALL * max(
            rate for _, rate in self._downlink_estimates
        )
        choices = self._allocator.allocate(
            estimate, loss, audio_tracks * AUDIO_BITRATE_BPS, demands, now, falling
        )
        shown = {demand.key for demand in demands if demand.visible}
        for mid, choice in choices.items():
            downtrack = self.downtracks[mid]
            paused = mid in shown and choice.target_layer < 0
            if paused != downtrack.bandwidth_paused:
                downtrack.bandwidth_paused = paused
                self.room.spawn(
                    self.send(
                        {
                            "type": "video_paused",
                            "participant_id": downtrack.publication.publisher.id,
                            "paused": paused,
                        }
                    )
                )
            downtrack.wanted_layer = choice.wanted_layer
            if downtrack.selector.target_layer != choice.target_layer:
                downtrack.selector.set_target(choice.target_layer)
                if choice.target_layer >= 0 and downtrack.active:
                    downtrack.publication.request_keyframe(now, choice.target_layer)
        low = self._allocator.struggling or (
            self.downlink_estimate_bps is not None
            and self.downlink_estimate_bps < LOW_BANDWIDTH_BPS
        )
        if low != self._low_bandwidth:
            self._low_bandwidth = low
            self.room.spawn(
                self.send(
                    {"type": "bandwidth", "downlink_bps": self.downlink_estimate_bps, "low": low}
                )
            )

    def update_publisher_layers(self, now: int) -> None:
        """Ask the page to pause the simulcast layers nobody wants, and to resume wanted ones.

        The lowest layer always stays on, so a newcomer sees a picture at once.
        """
        for publication in self.publications.values():
            if not publication.rids:
                continue
            wanted = {0}
            for downtrack in publication.downtracks:
                wanted.add(downtrack.wanted_layer)
                wanted.add(downtrack.current_layer)
            active = dict(publication.active_layers)
            for layer, rid in enumerate(publication.rids):
                key = (publication.mid, layer)
                if layer in wanted:
                    self._layer_unwanted_since.pop(key, None)
                    active[rid] = True
                else:
                    since = self._layer_unwanted_since.setdefault(key, now)
                    if now - since >= LAYER_PAUSE_AFTER_MS:
                        active[rid] = False
            if active != publication.active_layers:
                publication.active_layers = active
                self.room.spawn(
                    self.send(
                        {
                            "type": "publisher_layers",
                            "track_id": publication.track_id,
                            "active": active,
                        }
                    )
                )

    # -- timer -------------------------------------------------------------------------------

    async def _run_timer(self) -> None:
        while True:
            await asyncio.sleep(TICK_MS / 1000)
            try:
                self.tick(now_ms())
            except Exception:  # a bug here must not stop feedback for the whole call
                self.tick_errors += 1
                if self.tick_errors <= 3:
                    logger.exception("participant timer failed")

    def tick(self, now: int) -> None:
        state = self.transport.state
        if state != "connected":
            if now - self.created_ms > self.config.connect_timeout_ms:
                self._close_soon("disconnected")
            return
        if now - self.last_packet_ms > self.config.media_timeout_ms:
            self._close_soon("disconnected")
            return
        media_ssrc = 0
        for publication in self.publications.values():
            publication.poll_keyframe_request(now)
            for stream in publication.streams.values():
                media_ssrc = media_ssrc or stream.ssrc
                if not stream.is_video:
                    continue  # Opus is not retransmitted; its FEC covers loss
                lost = stream.nack.due(now)
                if lost:
                    self.nacks_sent += 1
                    self.transport.send_rtcp(
                        build_nack(self.rtcp_ssrc, stream.ssrc, [s % SEQ_MODULO for s in lost])
                    )
        for feedback in self._twcc.build_feedback(self.rtcp_ssrc, media_ssrc):
            self.transport.send_rtcp(feedback)
        if now >= self._next_allocation_ms:
            self._next_allocation_ms = now + ALLOCATION_INTERVAL_MS
            self.allocate(now)
        if now >= self._next_report_ms:
            interval = now - self._last_report_ms if self._last_report_ms else REPORT_INTERVAL_MS
            self._last_report_ms = now
            self._next_report_ms = now + REPORT_INTERVAL_MS
            for publication in self.publications.values():
                for stream in publication.streams.values():
                    stream.measure_bitrate(interval)
            self.update_publisher_layers(now)
            self._send_reports(now)

    def _send_reports(self, now: int) -> None:
        blocks = []
        video_ssrcs = []
        for publication in self.publications.values():
            for stream in publication.streams.values():
                block = stream.report_block(now)
                if block is not None:
                    blocks.append(block)
                    if publication.kind == "video":
                        video_ssrcs.append(stream.ssrc)
        if blocks:
            compound = build_receiver_report(self.rtcp_ssrc, blocks)
            if video_ssrcs:
                compound += build_remb(
                    self.rtcp_ssrc, self.config.max_publish_bitrate_bps, video_ssrcs
                )
            self.transport.send_rtcp(compound + build_sdes_cname(self.rtcp_ssrc, self.cname))
        for downtrack in self.downtracks.values():
            report = downtrack.sender_report(now)
            if report is not None:
                cname = downtrack.publication.publisher.cname
                self.transport.send_rtcp(report + build_sdes_cname(downtrack.ssrc, cname))


def _abs_send_time_id(offered: dict[str, int]) -> int | None:
    """The abs-send-time extension id for the SFU's own video: the page's, or a free one."""
    if ABS_SEND_TIME_URI in offered:
        return offered[ABS_SEND_TIME_URI]
    used = set(offered.values())
    return next((ext_id for ext_id in range(1, 15) if ext_id not in used), None)


def _unwrap_rtx(packet: RtpPacketView, stream: PublishedStream) -> RtpPacketView | None:
    """The original packet inside an RTX packet; None for RTX padding (bandwidth probes)."""
    payload = packet.payload
    if len(payload) - packet.padding_size < 2:
        return None
    stream.rtx_packets += 1
    original = RtpPacketView(
        marker=packet.marker,
        payload_type=stream.publication.payload_type,
        seq=(payload[0] << 8) | payload[1],
        timestamp=packet.timestamp,
        ssrc=stream.ssrc,
        payload=payload[2:],
        padding_size=packet.padding_size,
    )
    return original
