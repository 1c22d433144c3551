"""The forwarding of one publication to one subscriber: layer selection plus RTP rewriting.

`forward` is pure (the packet as this subscriber gets it, or None with the drop counted); the
published stream's fan-out hands the result to the down track's own `sink`.
"""

from __future__ import annotations

import struct
from collections import Counter
from typing import Protocol

from sfu.drop_reason import DropReason
from sfu.layer_selector import NO_LAYER, LayerSelector
from sfu.publication import Publication, PublishedStream
from sfu.retransmission import BufferedPacket
from sfu.rewriter import RtpRewriter
from sfu.rtcp import build_sender_report
from sfu.rtp import RTP_HEADER, RtpPacketView
from sfu.vp8 import Vp8Munger

RETRANSMIT_SHARE = 0.25  # resends may add at most a quarter to what is forwarded
RETRANSMIT_BURST = 40
RETRANSMIT_INTERVAL_MS = 100

# Fixed header plus a one-byte-header extension block holding only abs-send-time (3 bytes).
RTP_HEADER_WITH_ABS_SEND_TIME = struct.Struct("!BBHIIHHI")


class RtpSink(Protocol):
    """Where a down track's packets go: the subscriber's media transport, or the recording tap."""

    def send_rtp(self, data: bytes) -> bool: ...


class DownTrack:
    """Writes the packets of one publication with the subscriber's SSRC, payload type, numbering.

    The publisher's header extensions are not copied: the subscriber gets a fresh header (with
    abs-send-time for video, so its browser can estimate the downlink and send REMB); the payload
    is the publisher's, with only the VP8 picture numbering rewritten after a layer switch.
    """

    __slots__ = (
        "_abs_send_time_word",
        "_retransmit_credit",
        "_retransmitted_at",
        "_sent_at_last_credit",
        "_source",
        "active",
        "bandwidth_paused",
        "bytes_sent",
        "drops",
        "fraction_lost",
        "layer_switches",
        "lossy_reports",
        "mid",
        "munger",
        "packets_sent",
        "payload_bytes_sent",
        "payload_type",
        "publication",
        "retransmissions",
        "rewriter",
        "selector",
        "sink",
        "ssrc",
        "wanted_layer",
    )

    def __init__(
        self,
        publication: Publication,
        mid: str,
        ssrc: int,
        payload_type: int,
        sink: RtpSink,
        initial_seq: int,
        initial_timestamp: int,
        abs_send_time_id: int | None = None,
    ) -> None:
        self.publication = publication
        self.mid = mid
        self.ssrc = ssrc
        self.payload_type = payload_type
        self.sink = sink
        self.rewriter = RtpRewriter(publication.clock_rate, initial_seq, initial_timestamp)
        is_video = publication.kind == "video"
        top = publication.layer_count - 1
        self.selector = LayerSelector(needs_keyframe=is_video, preferred_layer=top)
        self.munger = Vp8Munger() if is_video else None
        # Top four bits id, then length-1 (2): the extension element's first byte, shifted in place.
        self._abs_send_time_word = (
            ((abs_send_time_id << 4) | 2) << 24 if is_video and abs_send_time_id else 0
        )
        self.wanted_layer = top  # the allocator's choice before "what is flowing" is applied
        self.bandwidth_paused = False  # shown, but paused because the downlink is too weak
        self.active = False  # negotiated with the subscriber and its transport is connected
        self._source = -1
        self.packets_sent = 0
        self.bytes_sent = 0
        self.payload_bytes_sent = 0
        self.retransmissions = 0
        self._retransmit_credit = float(RETRANSMIT_BURST)
        self._sent_at_last_credit = 0
        self._retransmitted_at: dict[int, int] = {}
        self.layer_switches = 0
        self.fraction_lost = 0.0  # from the subscriber's receiver reports, once it persists
        self.lossy_reports = 0
        self.drops: Counter[DropReason] = Counter()

    @property
    def kind(self) -> str:
        return self.publication.kind

    @property
    def current_layer(self) -> int:
        return self.selector.current_layer

    @property
    def target_layer(self) -> int:
        return self.selector.target_layer

    def forward(
        self, stream: PublishedStream, packet: RtpPacketView, now_ms: int, abs_send_time: int = 0
    ) -> bytes | None:
        """The packet as this subscriber must receive it, or None (reason counted in `drops`)."""
        if not self.active:
            self.drops[DropReason.TRANSPORT_NOT_READY] += 1
            return None
        source = stream.source_id
        if packet.padding_size and len(packet.payload) <= packet.padding_size:
            self.rewriter.skip(source, packet.ext_seq)
            self.drops[DropReason.PADDING_ONLY] += 1
            return None
        selector = self.selector
        if (
            source != self._source
            or stream.layer != selector.current_layer
            or selector.target_layer == NO_LAYER
        ):
            # Not the steady state: starting, switching, paused, or the publisher restarted.
            if not self._select(stream, packet):
                return None
        mapped = self.rewriter.rewrite(source, packet.ext_seq, packet.timestamp, now_ms)
        if mapped is None:
            self.drops[DropReason.TOO_OLD] += 1
            return None
        payload = packet.payload
        munger = self.munger
        if munger is not None and (munger.picture_id_offset or munger.tl0_offset):
            payload = munger.rewrite(payload)
        out = self._write(packet, payload, mapped[0], mapped[1], abs_send_time)
        self.packets_sent += 1
        self.bytes_sent += len(out)
        self.payload_bytes_sent += len(payload)
        return out

    def _select(self, stream: PublishedStream, packet: RtpPacketView) -> bool:
        """Layer selection outside the steady state; True when the packet is to be forwarded."""
        selector = self.selector
        source = stream.source_id
        if source != self._source and stream.layer == selector.current_layer:
            selector.reset()  # the publisher restarted this layer: a decoder needs a keyframe
        previous = selector.current_layer
        reason = selector.select(stream.layer, packet.is_keyframe)
        if reason:
            self.drops[reason] += 1
            return False
        if source != self._source:
            if self.munger is not None:
                self.munger.switch(self._last_forwarded_payload(), packet.payload)
            if previous != NO_LAYER:
                self.layer_switches += 1
            self._source = source
        return True

    def _last_forwarded_payload(self) -> bytes | None:
        """The payload (as received) of the newest packet forwarded so far, from its buffer."""
        stream = self.publication.stream_by_source(self._source)
        if stream is None:
            return None
        packet = stream.buffer.get(self.rewriter.highest_in_ext_seq)
        return packet.payload if packet is not None else None

    def _write(
        self,
        packet: RtpPacketView | BufferedPacket,
        payload: bytes,
        seq: int,
        timestamp: int,
        abs_send_time: int,
    ) -> bytes:
        second = (0x80 if packet.marker else 0) | self.payload_type
        word = self._abs_send_time_word
        if word:
            header = RTP_HEADER_WITH_ABS_SEND_TIME.pack(
                0xB0 if packet.padding_size else 0x90,
                second,
                seq,
                timestamp,
                self.ssrc,
                0xBEDE,
                1,
                word | (abs_send_time & 0xFFFFFF),
            )
        else:
            header = RTP_HEADER.pack(
                0xA0 if packet.padding_size else 0x80, second, seq, timestamp, self.ssrc
            )
        return header + payload

    def receiver_report(self, fraction_lost: float) -> None:
        """Loss the subscriber reports; one lossy report alone (a burst) is not yet congestion."""
        if fraction_lost > 0.02:
            self.lossy_reports += 1
        else:
            self.lossy_reports = 0
        self.fraction_lost = fraction_lost if self.lossy_reports != 1 else 0.0

    def retransmit(
        self, lost_seqs: tuple[int, ...], abs_send_time: int = 0, now_ms: int = 0
    ) -> list[bytes]:
        """Packets to send again for a subscriber's NACK, from the publication's buffers.

        On a congested link retransmissions would add to the congestion: a packet is resent at
        most once per RETRANSMIT_INTERVAL_MS, and all resends together stay below a share of what
        is forwarded (a credit earned per forwarded packet).
        """
        self._retransmit_credit = min(
            float(RETRANSMIT_BURST),
            self._retransmit_credit
            + RETRANSMIT_SHARE * (self.packets_sent - self._sent_at_last_credit),
        )
        self._sent_at_last_credit = self.packets_sent
        if len(self._retransmitted_at) > 512:
            self._retransmitted_at = {
                seq: at
                for seq, at in self._retransmitted_at.items()
                if now_ms - at < RETRANSMIT_INTERVAL_MS
            }
        result = []
        for out_seq in lost_seqs:
            if self._retransmit_credit < 1:
                self.drops[DropReason.RETRANSMIT_LIMIT] += 1
                continue
            last = self._retransmitted_at.get(out_seq)
            if last is not None and now_ms - last < RETRANSMIT_INTERVAL_MS:
                continue
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
            payload = packet.payload
            if self.munger is not None:
                payload = self.munger.rewrite(payload)
            timestamp = (packet.timestamp + ts_offset) & 0xFFFFFFFF
            result.append(self._write(packet, payload, out_seq, timestamp, abs_send_time))
            self._retransmit_credit -= 1
            self._retransmitted_at[out_seq] = now_ms
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
