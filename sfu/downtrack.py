"""The forwarding of one publication to one subscriber: layer selection plus RTP rewriting."""

from __future__ import annotations

from collections import Counter
from typing import Protocol

from sfu.drop_reason import DropReason
from sfu.layer_selector import LayerSelector
from sfu.publication import Publication, PublishedStream
from sfu.rewriter import RtpRewriter
from sfu.rtcp import build_sender_report
from sfu.rtp import RTP_HEADER, RtpPacketView


class RtpSink(Protocol):
    """Where a down track's packets go: the subscriber's media transport."""

    def send_rtp(self, data: bytes) -> bool: ...


class DownTrack:
    """Writes the packets of one publication with the subscriber's SSRC, payload type, numbering.

    Header extensions are not copied: the subscriber gets a plain 12-byte header, the payload is
    the publisher's, byte for byte.
    """

    __slots__ = (
        "_source",
        "active",
        "bytes_sent",
        "drops",
        "mid",
        "packets_sent",
        "payload_bytes_sent",
        "payload_type",
        "publication",
        "retransmissions",
        "rewriter",
        "selector",
        "ssrc",
        "transport",
    )

    def __init__(
        self,
        publication: Publication,
        mid: str,
        ssrc: int,
        payload_type: int,
        transport: RtpSink,
        initial_seq: int,
        initial_timestamp: int,
    ) -> None:
        self.publication = publication
        self.mid = mid
        self.ssrc = ssrc
        self.payload_type = payload_type
        self.transport = transport
        self.rewriter = RtpRewriter(publication.clock_rate, initial_seq, initial_timestamp)
        self.selector = LayerSelector(needs_keyframe=publication.kind == "video")
        self.active = False  # negotiated with the subscriber and its transport is connected
        self._source = -1
        self.packets_sent = 0
        self.bytes_sent = 0
        self.payload_bytes_sent = 0
        self.retransmissions = 0
        self.drops: Counter[DropReason] = Counter()

    def forward(self, stream: PublishedStream, packet: RtpPacketView, now_ms: int) -> bytes | None:
        """The packet as this subscriber must receive it, or None (reason counted in `drops`)."""
        if not self.active:
            self.drops[DropReason.TRANSPORT_NOT_READY] += 1
            return None
        source = stream.source_id
        if packet.padding_size and len(packet.payload) <= packet.padding_size:
            self.rewriter.skip(source, packet.ext_seq)
            self.drops[DropReason.PADDING_ONLY] += 1
            return None
        if source != self._source:
            # First packet, or the publisher restarted: a video decoder needs a keyframe first.
            self.selector.reset()
        reason = self.selector.select(stream.layer, packet.is_keyframe)
        if reason:
            self.drops[reason] += 1
            return None
        self._source = source
        mapped = self.rewriter.rewrite(source, packet.ext_seq, packet.timestamp, now_ms)
        if mapped is None:
            self.drops[DropReason.TOO_OLD] += 1
            return None
        out = self._write(packet, mapped[0], mapped[1])
        self.packets_sent += 1
        self.bytes_sent += len(out)
        self.payload_bytes_sent += len(packet.payload)
        return out

    def _write(self, packet: RtpPacketView, seq: int, timestamp: int) -> bytes:
        header = RTP_HEADER.pack(
            0xA0 if packet.padding_size else 0x80,
            (0x80 if packet.marker else 0) | self.payload_type,
            seq,
            timestamp,
            self.ssrc,
        )
        return header + packet.payload

    def retransmit(self, lost_seqs: tuple[int, ...]) -> list[bytes]:
        """Packets to send again for a subscriber's NACK, from the publication's buffers."""
        result = []
        for out_seq in lost_seqs:
            found = self.rewriter.source_for_out_seq(out_seq)
            if found is None:
                continue
            source, in_ext_seq, ts_offset = found
            stream = self.publication.stream_by_source(source)
            if stream is None:
                continue
            packet = stream.buffer.get(in_ext_seq)
            if packet is None:
                continue
            result.append(self._write(packet, out_seq, (packet.timestamp + ts_offset) & 0xFFFFFFFF))
        self.retransmissions += len(result)
        return result

    def sender_report(self, now_ms: int) -> bytes | None:
        """A sender report mapping this stream's timestamps to the publisher's NTP clock."""
        if not self.rewriter.started or not self.active:
            return None
        stream = self.publication.stream_by_source(self._source)
        if stream is None or not stream.sr_clock.known:
            return None
        ntp, rtp = stream.sr_clock.project(now_ms)
        return build_sender_report(
            self.ssrc,
            ntp,
            (rtp + self.rewriter.ts_offset) & 0xFFFFFFFF,
            self.packets_sent,
            self.payload_bytes_sent,
        )
