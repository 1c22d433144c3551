"""What comes in from one participant: its RTP and RTCP, after SRTP (the adapter unprotects).

`Ingress.on_rtp` is the start of the packet path: read the header, record the transport-wide
sequence number, find the layer's `PublishedStream` (learning SSRCs that the SDP did not name),
unwrap RTX, and hand the packet to the stream, which fans it out to the down tracks. The
participant is not on that path.

`Ingress.on_rtcp` takes the publisher's sender reports itself and hands what a subscriber says
about the SFU's down tracks (receiver reports, NACK, PLI/FIR, REMB) to a `SubscriberFeedback`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

from sfu.clock import monotonic_ns
from sfu.publication import Publication, PublishedStream, Publisher
from sfu.rtcp import (
    FullIntraRequest,
    Nack,
    PictureLossIndication,
    ReceiverReport,
    Remb,
    RtcpError,
    SenderReport,
    parse_rtcp,
)
from sfu.rtp import RtpPacketView, parse_rtp, read_header_extension
from sfu.sdp import AUDIO_LEVEL_URI, MID_URI, REPAIRED_RID_URI, RID_URI, TWCC_URI, OfferedMedia
from sfu.twcc import TwccRecorder

# At most this many SSRCs (media and RTX) are learnt per publication: a page cannot grow maps.
MAX_LEARNT_STREAMS = 16


class AudioLevels(Protocol):
    """Where RFC 6464 audio levels go: the room's active-speaker detector."""

    def level(self, participant_id: str, level_dbov: int, now_ms: int) -> None: ...


class SubscriberFeedback(Protocol):
    """What the participant's browser says about the streams the SFU sends it."""

    def receiver_report(self, ssrc: int, fraction_lost: float) -> None: ...

    def nack(self, media_ssrc: int, lost: tuple[int, ...], now_ms: int) -> None: ...

    def keyframe_request(self, media_ssrc: int, now_ms: int) -> None: ...

    def remb(self, bitrate_bps: int, now_ms: int) -> None: ...


class Ingress:
    """One participant's incoming media: its publications, their streams by SSRC, TWCC record."""

    def __init__(
        self,
        publisher: Publisher,
        participant_id: str,
        keyframe_interval_ms: int,
        audio_levels: AudioLevels,
        feedback: SubscriberFeedback,
        new_track_id: Callable[[], str],
    ) -> None:
        self._publisher = publisher
        self._participant_id = participant_id
        self._keyframe_interval_ms = keyframe_interval_ms
        self._audio_levels = audio_levels
        self._feedback = feedback
        self._new_track_id = new_track_id
        self.publications: dict[str, Publication] = {}  # by mid
        self._streams: dict[int, PublishedStream] = {}  # by incoming SSRC
        self._rtx_streams: dict[int, PublishedStream] = {}  # by incoming RTX SSRC
        self._publication_by_pt: dict[int, Publication] = {}
        self._mid_extension_id: int | None = None
        self._rid_extension_id: int | None = None
        self._repaired_rid_extension_id: int | None = None
        self._twcc_extension_id: int | None = None
        self._audio_level_extension_id: int | None = None
        self.twcc = TwccRecorder()
        self.last_packet_ms = 0  # RTP or RTCP: the participant's liveness
        self.rtcp_errors = 0

    # -- what the page's offer says ----------------------------------------------------------

    def add_offered(self, offered: Iterable[OfferedMedia]) -> None:
        """The header extension ids and the publications (recvonly m-lines) of the page's offer."""
        for media in offered:
            codec = media.codec
            if codec is None:
                continue
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
                self._publisher,
                track_id=self._new_track_id(),
                kind=media.kind,
                mid=media.mid,
                payload_type=codec.payload_type,
                clock_rate=codec.clock_rate,
                keyframe_interval_ms=self._keyframe_interval_ms,
                rids=media.rids,
                rtx_payload_type=codec.rtx_payload_type,
            )
            self.add_publication(publication, media.ssrcs)

    def add_publication(self, publication: Publication, ssrcs: Iterable[int] = ()) -> None:
        """A publication and, without simulcast, the SSRCs (media, RTX) that the SDP names."""
        self.publications[publication.mid] = publication
        self._publication_by_pt[publication.payload_type] = publication
        if publication.rtx_payload_type is not None:
            self._publication_by_pt[publication.rtx_payload_type] = publication
        named = list(ssrcs)
        if named and not publication.rids:
            stream = publication.add_stream(named[0])
            self._streams[named[0]] = stream
            if len(named) > 1 and publication.rtx_payload_type is not None:
                stream.rtx_ssrc = named[1]
                self._rtx_streams[named[1]] = stream

    # -- media (hot path) --------------------------------------------------------------------

    def on_rtp(self, data: bytes, arrival_time_ms: int) -> None:
        now_ns = monotonic_ns()
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
                self.twcc.record((value[0] << 8) | value[1], now_ns // 1000)
        stream = self._streams.get(packet.ssrc)
        if stream is None:
            stream = self._rtx_streams.get(packet.ssrc)
            if stream is None:
                stream = self._learn_stream(packet, now)
                if stream is None:
                    return
            if stream.ssrc != packet.ssrc:  # a retransmission in RTX (RFC 4588)
                restored = unwrap_rtx(packet, stream)
                if restored is None:
                    return
                packet = restored
        if self._audio_level_extension_id is not None and extension and not stream.is_video:
            level = read_header_extension(
                packet.extension_profile, extension, self._audio_level_extension_id
            )
            if level:
                self._audio_levels.level(self._participant_id, level[0] & 0x7F, now)
        # abs-send-time (sfu.clock.abs_send_time), inline: this runs for every packet.
        stream.deliver(packet, now, ((now_ns // 1000) << 18) // 1_000_000)

    def _learn_stream(self, packet: RtpPacketView, now_ms: int) -> PublishedStream | None:
        """An SSRC not in the SDP: find its publication and layer from header extensions.

        Chrome sends the mid and rid extensions only in the first packets of a stream, so the
        mapping is remembered. An RTX stream names its layer with the repaired rid.
        """
        mid = _extension_text(packet, self._mid_extension_id)
        publication = self.publications.get(mid) if mid is not None else None
        if publication is None:
            publication = self._publication_by_pt.get(packet.payload_type)
        if (
            publication is None
            or len(publication.streams) + len(self._rtx_streams) >= MAX_LEARNT_STREAMS
        ):
            return None
        repaired = _extension_text(packet, self._repaired_rid_extension_id)
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
            rid = _extension_text(packet, self._rid_extension_id) or ""
            layer = publication.layer_of_rid(rid)
            if layer < 0:
                return None
        stream = publication.add_stream(packet.ssrc, layer, rid)
        self._streams[packet.ssrc] = stream
        if stream.restarts:
            publication.request_keyframe(now_ms, layer)
        return stream

    # -- control -----------------------------------------------------------------------------

    def on_rtcp(self, data: bytes) -> None:
        now = monotonic_ns() // 1_000_000
        self.last_packet_ms = now
        feedback = self._feedback
        try:
            for message in parse_rtcp(data):
                if isinstance(message, SenderReport):
                    stream = self._streams.get(message.ssrc)
                    if stream is not None:
                        stream.sr_clock.update(message.ntp_timestamp, message.rtp_timestamp, now)
                elif isinstance(message, ReceiverReport):
                    for block in message.reports:
                        feedback.receiver_report(block.ssrc, block.fraction_lost / 256)
                elif isinstance(message, Nack):
                    feedback.nack(message.media_ssrc, message.lost, now)
                elif isinstance(message, PictureLossIndication):
                    feedback.keyframe_request(message.media_ssrc, now)
                elif isinstance(message, FullIntraRequest):
                    for ssrc in message.media_ssrcs:
                        feedback.keyframe_request(ssrc, now)
                elif isinstance(message, Remb):
                    feedback.remb(message.bitrate_bps, now)
        except RtcpError:
            self.rtcp_errors += 1


def _extension_text(packet: RtpPacketView, ext_id: int | None) -> str | None:
    if ext_id is None or not packet.extension:
        return None
    value = read_header_extension(packet.extension_profile, packet.extension, ext_id)
    return value.decode("ascii", errors="replace") if value else None


def unwrap_rtx(packet: RtpPacketView, stream: PublishedStream) -> RtpPacketView | None:
    """The original packet inside an RTX packet; None for RTX padding (bandwidth probes)."""
    payload = packet.payload
    if len(payload) - packet.padding_size < 2:
        return None
    stream.rtx_packets += 1
    return RtpPacketView(
        marker=packet.marker,
        payload_type=stream.publication.payload_type,
        seq=(payload[0] << 8) | payload[1],
        timestamp=packet.timestamp,
        ssrc=stream.ssrc,
        payload=payload[2:],
        padding_size=packet.padding_size,
    )
