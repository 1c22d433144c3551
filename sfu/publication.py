"""A published track and the RTP streams (layers) that carry it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sfu.keyframe import KeyframeRequestThrottle
from sfu.nack import NackGenerator
from sfu.retransmission import RetransmissionBuffer
from sfu.rtcp import ReportBlock
from sfu.rtp import RtpPacketView
from sfu.sender_report import SenderReportClock, ntp_middle_32
from sfu.seq import SEQ_MODULO, SequenceUnwrapper
from sfu.vp8 import vp8_is_keyframe

if TYPE_CHECKING:
    from sfu.downtrack import DownTrack
    from sfu.participant import Participant


class PublishedStream:
    """One incoming RTP stream (one SSRC; one simulcast layer) of a publication."""

    __slots__ = (
        "_expected_prior",
        "_jitter",
        "_last_transit",
        "_received_prior",
        "base_ext_seq",
        "buffer",
        "bytes_received",
        "clock_rate",
        "generation",
        "is_video",
        "layer",
        "nack",
        "packets_received",
        "publication",
        "restarts",
        "source_id",
        "sr_clock",
        "ssrc",
        "unwrapper",
    )

    def __init__(self, publication: Publication, ssrc: int, layer: int = 0) -> None:
        self.publication = publication
        self.ssrc = ssrc
        self.layer = layer
        self.clock_rate = publication.clock_rate
        self.is_video = publication.kind == "video"
        self.unwrapper = SequenceUnwrapper()
        self.buffer = RetransmissionBuffer(1024 if self.is_video else 128)
        self.nack = NackGenerator()
        self.sr_clock = SenderReportClock(self.clock_rate)
        self.generation = 0
        self.source_id = ssrc
        self.packets_received = 0
        self.bytes_received = 0
        self.restarts = 0
        self.base_ext_seq = -1
        self._expected_prior = 0
        self._received_prior = 0
        self._jitter = 0.0
        self._last_transit = 0.0

    def receive(self, packet: RtpPacketView, now_ms: int) -> bool:
        """Take in one packet. False for a duplicate that must not be forwarded again."""
        ext_seq = self.unwrapper.unwrap(packet.seq)
        if ext_seq < 0:
            # The publisher restarted its stream (huge sequence jump): a new source for subscribers.
            self.restart()
            ext_seq = self.unwrapper.unwrap(packet.seq)
        if self.base_ext_seq < 0:
            self.base_ext_seq = ext_seq
        packet.ext_seq = ext_seq
        if self.buffer.get(ext_seq) is not None:
            return False
        if self.is_video:
            packet.is_keyframe = vp8_is_keyframe(packet.payload)
        self.buffer.store(packet)
        self.nack.packet_received(ext_seq, now_ms)
        self.packets_received += 1
        self.bytes_received += len(packet.payload)
        transit = now_ms * self.clock_rate / 1000.0 - packet.timestamp
        if self.packets_received > 1:
            delta = abs(transit - self._last_transit)
            if delta < self.clock_rate * 10:  # ignore timestamp jumps
                self._jitter += (delta - self._jitter) / 16.0
        self._last_transit = transit
        return True

    def restart(self) -> None:
        self.generation += 1
        self.restarts += 1
        self.source_id = (self.generation << 32) | self.ssrc
        self.unwrapper.reset()
        self.nack.reset()
        self.buffer.clear()
        self.base_ext_seq = -1
        self._expected_prior = 0
        self._received_prior = 0

    def report_block(self, now_ms: int) -> ReportBlock | None:
        """An RFC 3550 reception report block for this stream."""
        if self.base_ext_seq < 0:
            return None
        highest = self.unwrapper.highest_ext_seq
        expected = highest - self.base_ext_seq + 1
        lost = expected - self.packets_received
        expected_interval = expected - self._expected_prior
        received_interval = self.packets_received - self._received_prior
        self._expected_prior = expected
        self._received_prior = self.packets_received
        lost_interval = expected_interval - received_interval
        fraction = 0
        if expected_interval > 0 and lost_interval > 0:
            fraction = (lost_interval << 8) // expected_interval
        return ReportBlock(
            ssrc=self.ssrc,
            fraction_lost=fraction,
            packets_lost=lost,
            highest_ext_seq=highest - SEQ_MODULO,
            jitter=int(self._jitter),
            lsr=ntp_middle_32(self.sr_clock.ntp) if self.sr_clock.known else 0,
            dlsr=self.sr_clock.delay_since_last_sr(now_ms),
        )


class Publication:
    """A track one participant publishes (its microphone or camera), with its layers by rid."""

    def __init__(
        self,
        publisher: Participant,
        track_id: str,
        kind: str,
        mid: str,
        payload_type: int,
        clock_rate: int,
        keyframe_interval_ms: int,
    ) -> None:
        self.publisher = publisher
        self.track_id = track_id
        self.kind = kind
        self.mid = mid
        self.payload_type = payload_type
        self.clock_rate = clock_rate
        self.muted = False
        self.streams: dict[int, PublishedStream] = {}
        self.downtracks: list[DownTrack] = []
        self.keyframe_throttle = KeyframeRequestThrottle(keyframe_interval_ms)
        self.keyframe_requests_sent = 0

    def add_stream(self, ssrc: int, layer: int = 0) -> PublishedStream:
        stream = PublishedStream(self, ssrc, layer)
        self.streams[ssrc] = stream
        return stream

    def stream_by_source(self, source_id: int) -> PublishedStream | None:
        stream = self.streams.get(source_id & 0xFFFFFFFF)
        if stream is None or stream.source_id != source_id:
            return None
        return stream

    @property
    def packets_received(self) -> int:
        return sum(stream.packets_received for stream in self.streams.values())

    @property
    def bytes_received(self) -> int:
        return sum(stream.bytes_received for stream in self.streams.values())

    def request_keyframe(self, now_ms: int) -> None:
        """Ask the publisher for a keyframe, throttled; audio needs none."""
        if self.kind != "video":
            return
        if self.keyframe_throttle.request(now_ms):
            self._send_keyframe_request()

    def poll_keyframe_request(self, now_ms: int) -> None:
        if self.kind == "video" and self.keyframe_throttle.poll(now_ms):
            self._send_keyframe_request()

    def _send_keyframe_request(self) -> None:
        self.keyframe_requests_sent += 1
        for stream in self.streams.values():
            self.publisher.send_pli(stream.ssrc)

    def describe(self) -> dict[str, object]:
        return {"id": self.track_id, "kind": self.kind, "muted": self.muted}
