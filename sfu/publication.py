"""A published track and the RTP streams (simulcast layers, by rid) that carry it.

A `PublishedStream` takes in each packet of its layer and fans it out to the publication's down
tracks, each of which sends through its own sink: the packet never goes back to the participant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from sfu.keyframe import KeyframeRequestThrottle
from sfu.nack import NackGenerator
from sfu.retransmission import RetransmissionBuffer
from sfu.rtcp import ReportBlock
from sfu.rtp import RtpPacketView
from sfu.sender_report import SenderReportClock, ntp_middle_32
from sfu.seq import SEQ_MODULO, SequenceUnwrapper
from sfu.vp8 import vp8_is_keyframe, vp8_keyframe_size

if TYPE_CHECKING:
    from sfu.downtrack import DownTrack

# Bit rates assumed for a layer that is not flowing (paused), by layer index: the page's maxBitrate.
NOMINAL_LAYER_BITRATES = (150_000, 500_000, 1_500_000)
LAYER_TIMEOUT_MS = 1500


class Publisher(Protocol):
    """What a publication needs from the participant who publishes it."""

    id: str
    cname: str

    def send_pli(self, media_ssrc: int) -> None: ...


class PublishedStream:
    """One incoming RTP stream (one SSRC; one simulcast layer) of a publication."""

    __slots__ = (
        "_bytes_at_last_rate",
        "_expected_prior",
        "_jitter",
        "_last_transit",
        "_received_prior",
        "base_ext_seq",
        "bitrate_bps",
        "buffer",
        "bytes_received",
        "clock_rate",
        "downtracks",
        "frame_size",
        "generation",
        "is_video",
        "keyframe_throttle",
        "last_packet_ms",
        "layer",
        "nack",
        "packets_received",
        "publication",
        "restarts",
        "rid",
        "rtx_packets",
        "rtx_ssrc",
        "source_id",
        "sr_clock",
        "ssrc",
        "unwrapper",
    )

    def __init__(self, publication: Publication, ssrc: int, layer: int = 0, rid: str = "") -> None:
        self.publication = publication
        self.ssrc = ssrc
        self.layer = layer
        self.rid = rid
        self.rtx_ssrc: int | None = None
        self.clock_rate = publication.clock_rate
        self.is_video = publication.kind == "video"
        # The publication's list itself (never replaced), so fan-out needs no lookup through it.
        self.downtracks = publication.downtracks
        self.unwrapper = SequenceUnwrapper()
        self.buffer = RetransmissionBuffer(1024 if self.is_video else 128)
        self.nack = NackGenerator()
        self.sr_clock = SenderReportClock(self.clock_rate)
        self.keyframe_throttle = KeyframeRequestThrottle(publication.keyframe_interval_ms)
        self.generation = 0
        self.source_id = ssrc
        self.packets_received = 0
        self.bytes_received = 0
        self.rtx_packets = 0
        self.restarts = 0
        self.base_ext_seq = -1
        self.last_packet_ms = -1
        self.bitrate_bps = 0
        self.frame_size: tuple[int, int] | None = None
        self._bytes_at_last_rate = 0
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
        if self.buffer.contains(ext_seq):
            return False
        if self.is_video and vp8_is_keyframe(packet.payload):
            packet.is_keyframe = True
            self.keyframe_throttle.keyframe_received()
            size = vp8_keyframe_size(packet.payload)
            if size is not None:
                self.frame_size = size
        self.buffer.store(packet)
        self.nack.packet_received(ext_seq, now_ms)
        self.packets_received += 1
        self.bytes_received += len(packet.payload)
        self.last_packet_ms = now_ms
        transit = now_ms * self.clock_rate / 1000.0 - packet.timestamp
        if self.packets_received > 1:
            delta = abs(transit - self._last_transit)
            if delta < self.clock_rate * 10:  # ignore timestamp jumps
                self._jitter += (delta - self._jitter) / 16.0
        self._last_transit = transit
        return True

    def deliver(self, packet: RtpPacketView, now_ms: int, abs_send_time: int) -> None:
        """Take in one packet and send it to every down track of the publication (hot path)."""
        restarts = self.restarts
        if not self.receive(packet, now_ms):
            return
        if self.restarts != restarts:
            self.publication.request_keyframe(now_ms, self.layer)
        for downtrack in self.downtracks:
            out = downtrack.forward(self, packet, now_ms, abs_send_time)
            if out is not None:
                downtrack.sink.send_rtp(out)

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

    def flowing(self, now_ms: int) -> bool:
        return self.last_packet_ms >= 0 and now_ms - self.last_packet_ms < LAYER_TIMEOUT_MS

    def measure_bitrate(self, interval_ms: int) -> None:
        """Called once per interval: the payload bit rate over that interval."""
        received = self.bytes_received - self._bytes_at_last_rate
        self._bytes_at_last_rate = self.bytes_received
        self.bitrate_bps = received * 8000 // max(1, interval_ms)

    def request_keyframe(self, now_ms: int, publisher: Publisher) -> bool:
        if self.keyframe_throttle.request(now_ms):
            publisher.send_pli(self.ssrc)
            return True
        return False

    def poll_keyframe_request(self, now_ms: int, publisher: Publisher) -> bool:
        if self.keyframe_throttle.poll(now_ms):
            publisher.send_pli(self.ssrc)
            return True
        return False

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
        publisher: Publisher,
        track_id: str,
        kind: str,
        mid: str,
        payload_type: int,
        clock_rate: int,
        keyframe_interval_ms: int,
        rids: list[str] | None = None,
        rtx_payload_type: int | None = None,
    ) -> None:
        self.publisher = publisher
        self.track_id = track_id
        self.kind = kind
        self.mid = mid
        self.payload_type = payload_type
        self.rtx_payload_type = rtx_payload_type
        self.clock_rate = clock_rate
        self.keyframe_interval_ms = keyframe_interval_ms
        self.rids = list(rids or [])
        self.muted = False
        self.streams: dict[int, PublishedStream] = {}
        self.layers: list[PublishedStream | None] = [None] * max(1, len(self.rids))
        self.downtracks: list[DownTrack] = []
        self.keyframe_requests_sent = 0
        # Which layers the publisher is asked to send (by rid); all until someone decides.
        self.active_layers: dict[str, bool] = {rid: True for rid in self.rids}

    @property
    def layer_count(self) -> int:
        return len(self.layers)

    def layer_of_rid(self, rid: str) -> int:
        """Layer index of a rid; -1 when the page never announced it."""
        try:
            return self.rids.index(rid)
        except ValueError:
            return -1

    def add_downtrack(self, downtrack: DownTrack) -> None:
        """Start fanning this publication's packets out to a down track."""
        if downtrack not in self.downtracks:
            self.downtracks.append(downtrack)

    def remove_downtrack(self, downtrack: DownTrack) -> None:
        if downtrack in self.downtracks:
            self.downtracks.remove(downtrack)

    def add_stream(self, ssrc: int, layer: int = 0, rid: str = "") -> PublishedStream:
        stream = PublishedStream(self, ssrc, layer, rid)
        self.streams[ssrc] = stream
        if 0 <= layer < len(self.layers):
            previous = self.layers[layer]
            self.layers[layer] = stream
            if previous is not None and previous is not stream:
                # The publisher restarted this layer with a new SSRC: a new source for subscribers.
                stream.restart()
        return stream

    def stream_by_source(self, source_id: int) -> PublishedStream | None:
        stream = self.streams.get(source_id & 0xFFFFFFFF)
        if stream is None or stream.source_id != source_id:
            return None
        return stream

    def flowing_layers(self, now_ms: int) -> list[bool]:
        return [stream is not None and stream.flowing(now_ms) for stream in self.layers]

    def layer_bitrates(self, now_ms: int) -> list[int]:
        """Measured bit rate per layer; the nominal one for a layer that is not flowing."""
        rates = []
        for index, stream in enumerate(self.layers):
            if stream is not None and stream.flowing(now_ms) and stream.bitrate_bps > 0:
                rates.append(stream.bitrate_bps)
            else:
                rates.append(NOMINAL_LAYER_BITRATES[min(index, len(NOMINAL_LAYER_BITRATES) - 1)])
        return rates

    def layer_sizes(self) -> list[tuple[int, int] | None]:
        return [stream.frame_size if stream is not None else None for stream in self.layers]

    @property
    def packets_received(self) -> int:
        return sum(stream.packets_received for stream in self.streams.values())

    @property
    def bytes_received(self) -> int:
        return sum(stream.bytes_received for stream in self.streams.values())

    def request_keyframe(self, now_ms: int, layer: int | None = None) -> None:
        """Ask the publisher for a keyframe of one layer (all when None), throttled per layer."""
        if self.kind != "video":
            return
        for index, stream in enumerate(self.layers):
            if stream is not None and (layer is None or index == layer):
                if stream.request_keyframe(now_ms, self.publisher):
                    self.keyframe_requests_sent += 1

    def poll_keyframe_request(self, now_ms: int) -> None:
        if self.kind != "video":
            return
        for stream in self.layers:
            if stream is not None and stream.poll_keyframe_request(now_ms, self.publisher):
                self.keyframe_requests_sent += 1

    def describe(self) -> dict[str, object]:
        return {"id": self.track_id, "kind": self.kind, "muted": self.muted}
