"""Rebuilding whole frames from RTP packets: VP8 frames (RFC 7741) and Opus packets (RFC 7587).

Both depacketizers put packets back in sequence order in a small reorder buffer, drop duplicates
and packets that come too late, and unwrap 16-bit sequence numbers into extended (`ext_`) ones.
A missing packet is waited for until the buffer holds `max_packets` packets or its oldest packet
has waited `max_delay_ms`; then it counts as lost. The first packet received fixes where the
stream starts: an earlier packet that arrives after it counts as late.

VP8: a frame starts with a packet whose descriptor has the S bit set and partition index 0, and
ends with the marker bit (or when the next packet carries another timestamp or starts a new
frame). A frame with a missing packet is dropped; since later inter frames refer to it, every
frame after a loss is dropped too until the next keyframe, and a keyframe request is raised.
At the start the depacketizer also waits for a keyframe. Requests are throttled
(`keyframe_interval_ms`) and a throttled request stays pending, so it is never lost:
`keyframe_request_due(now)` says when to send one (PLI).

Opus: every packet is one frame; a lost packet is simply missing (the decoder conceals it).
"""

from __future__ import annotations

from dataclasses import dataclass

from sfu.vp8 import vp8_descriptor_size

__all__ = [
    "DepacketizerStats",
    "Frame",
    "OpusDepacketizer",
    "ReorderBuffer",
    "Vp8Depacketizer",
    "vp8_frame_size",
]

SEQ_MODULO = 1 << 16
MAX_DROPOUT = 3000  # a forward jump larger than this is a restart of the stream
MAX_MISORDER = 100  # a packet this far behind the newest is late, further behind a restart


@dataclass(frozen=True, slots=True)
class Frame:
    """One complete frame: VP8 frame data without payload descriptors, or one Opus packet."""

    data: bytes
    timestamp: int  # 32-bit RTP timestamp
    keyframe: bool  # VP8 keyframe; True for every Opus packet (each decodes on its own)
    arrival_unix_s: float  # when its first packet arrived
    ext_seq_first: int
    ext_seq_last: int


@dataclass(slots=True)
class DepacketizerStats:
    packets: int = 0
    duplicates: int = 0
    late: int = 0  # arrived after its place had been given up as lost
    lost: int = 0  # given up after waiting
    restarts: int = 0  # sequence number jumps that restarted the stream
    frames: int = 0
    frames_dropped: int = 0  # incomplete, or an inter frame while waiting for a keyframe
    keyframes: int = 0
    keyframe_requests: int = 0


@dataclass(slots=True)
class _Packet:
    ext_seq: int
    timestamp: int
    marker: bool
    payload: bytes
    arrival_unix_s: float


class ReorderBuffer:
    """Puts packets back in ext_seq order; bounded by packet count and waiting time."""

    __slots__ = (
        "_buffer",
        "_highest",
        "_next",
        "max_delay_s",
        "max_packets",
        "stats",
    )

    def __init__(self, stats: DepacketizerStats, max_packets: int, max_delay_ms: int) -> None:
        self.stats = stats
        self.max_packets = max_packets
        self.max_delay_s = max_delay_ms / 1000
        self._buffer: dict[int, _Packet] = {}
        self._next = -1  # ext_seq of the next packet to release; -1 before the first packet
        self._highest = -1

    def _unwrap(self, seq: int) -> int:
        """ext_seq for a 16-bit seq, or -1 when the jump means the stream restarted."""
        highest = self._highest
        if highest < 0:
            return SEQ_MODULO + seq  # start in the second cycle: early stragglers stay positive
        delta = (seq - highest) & 0xFFFF
        if delta < MAX_DROPOUT:
            return highest + delta
        back = SEQ_MODULO - delta
        if back <= MAX_MISORDER:
            return highest - back
        return -1

    def push(
        self, seq: int, timestamp: int, marker: bool, payload: bytes, arrival_unix_s: float
    ) -> tuple[list[_Packet | None], bool]:
        """Add one packet. Returns the packets now in order (None marks a loss) and whether the
        stream restarted before this packet (everything buffered was given up)."""
        self.stats.packets += 1
        ext_seq = self._unwrap(seq & 0xFFFF)
        restarted = False
        out: list[_Packet | None] = []
        if ext_seq < 0:
            self.stats.restarts += 1
            out.extend(self._drain_all())
            out.append(None)  # the restart counts as a loss
            restarted = True
            self._buffer.clear()
            self._highest = -1
            ext_seq = self._unwrap(seq & 0xFFFF)
            self._next = ext_seq
        if self._next < 0:
            self._next = ext_seq
        if ext_seq < self._next:
            self.stats.late += 1
            return out, restarted
        if ext_seq in self._buffer:
            self.stats.duplicates += 1
            return out, restarted
        self._highest = max(self._highest, ext_seq)
        self._buffer[ext_seq] = _Packet(ext_seq, timestamp, marker, payload, arrival_unix_s)
        out.extend(self._release(arrival_unix_s))
        return out, restarted

    def _release(self, now_unix_s: float) -> list[_Packet | None]:
        out: list[_Packet | None] = []
        buffer = self._buffer
        while buffer:
            packet = buffer.pop(self._next, None)
            if packet is not None:
                out.append(packet)
                self._next += 1
                continue
            oldest = min(buffer)
            if (
                len(buffer) <= self.max_packets
                and now_unix_s - buffer[oldest].arrival_unix_s < self.max_delay_s
            ):
                break
            self.stats.lost += oldest - self._next
            out.append(None)
            self._next = oldest
        return out

    def _drain_all(self) -> list[_Packet | None]:
        out: list[_Packet | None] = []
        for ext_seq in sorted(self._buffer):
            if ext_seq != self._next:
                self.stats.lost += ext_seq - self._next
                out.append(None)
            out.append(self._buffer[ext_seq])
            self._next = ext_seq + 1
        self._buffer.clear()
        return out

    def poll(self, now_unix_s: float) -> list[_Packet | None]:
        """Give up on missing packets that have been waited for long enough."""
        return self._release(now_unix_s) if self._buffer else []

    def drain(self) -> list[_Packet | None]:
        """Everything still buffered, in order (at the end of the stream)."""
        return self._drain_all()

    @property
    def buffered(self) -> int:
        return len(self._buffer)


class Vp8Depacketizer:
    """RTP packets of one VP8 stream in, complete VP8 frames out (see the module docstring)."""

    def __init__(
        self,
        *,
        max_packets: int = 256,
        max_delay_ms: int = 100,
        keyframe_interval_ms: int = 500,
    ) -> None:
        self.stats = DepacketizerStats()
        self._reorder = ReorderBuffer(self.stats, max_packets, max_delay_ms)
        self.keyframe_interval_s = keyframe_interval_ms / 1000
        self.waiting_for_keyframe = True
        self._keyframe_wanted = False
        self._last_request_unix_s: float | None = None
        # The frame being assembled.
        self._parts: list[bytes] = []
        self._timestamp = 0
        self._keyframe = False
        self._arrival = 0.0
        self._first_seq = 0
        self._last_seq = 0
        self._active = False  # a frame start has been seen and no loss since
        self._skipping = False  # packets of a frame whose start is lost

    # --- input ---

    def push(
        self,
        seq: int,
        timestamp: int,
        marker: bool,
        payload: bytes,
        arrival_unix_s: float,
    ) -> list[Frame]:
        """One RTP packet (16-bit `seq`; an empty payload only advances the sequence)."""
        packets, _restarted = self._reorder.push(seq, timestamp, marker, payload, arrival_unix_s)
        frames: list[Frame] = []
        self._feed(packets, frames)
        return frames

    def poll(self, now_unix_s: float) -> list[Frame]:
        """Give up on packets waited for too long; call regularly when packets stop coming."""
        frames: list[Frame] = []
        self._feed(self._reorder.poll(now_unix_s), frames)
        return frames

    def finish(self) -> list[Frame]:
        """End of the stream: release what is buffered; a frame without its marker is dropped."""
        frames: list[Frame] = []
        self._feed(self._reorder.drain(), frames)
        if self._active and self._parts:
            self._drop_frame()
        self._active = False
        return frames

    def request_keyframe(self) -> None:
        """Wait for a keyframe from now on (e.g. for a new segment) and ask for one."""
        self._on_loss()

    # --- keyframe requests ---

    @property
    def keyframe_wanted(self) -> bool:
        return self._keyframe_wanted

    def keyframe_request_due(self, now_unix_s: float) -> bool:
        """True when a keyframe request (PLI) should be sent now; counts it."""
        if not self._keyframe_wanted:
            return False
        last = self._last_request_unix_s
        if last is not None and 0 <= now_unix_s - last < self.keyframe_interval_s:
            return False
        self._last_request_unix_s = now_unix_s
        self.stats.keyframe_requests += 1
        return True

    # --- assembly ---

    def _feed(self, packets: list[_Packet | None], frames: list[Frame]) -> None:
        for packet in packets:
            if packet is None:
                self._on_loss()
            else:
                self._on_packet(packet, frames)

    def _on_loss(self) -> None:
        if self._active and self._parts:
            self._drop_frame()
        self._active = False
        self._skipping = True
        self.waiting_for_keyframe = True
        self._keyframe_wanted = True

    def _drop_frame(self) -> None:
        self.stats.frames_dropped += 1
        self._parts = []
        self._active = False

    def _on_packet(self, packet: _Packet, frames: list[Frame]) -> None:
        payload = packet.payload
        if not payload:
            return  # padding: only advances the sequence
        descriptor = vp8_descriptor_size(payload)
        if not descriptor:
            self._on_loss()  # unusable packet: the frame it belongs to is broken
            return
        starts = bool(payload[0] & 0x10) and not payload[0] & 0x0F
        if self._active and (starts or packet.timestamp != self._timestamp):
            self._complete(frames)  # the previous frame ended without a marker
        if not self._active:
            if not starts:
                if not self._skipping:
                    self._skipping = True
                    self.stats.frames_dropped += 1
                    self._want_keyframe_if_waiting()
                return
            self._skipping = False
            self._active = True
            self._parts = []
            self._timestamp = packet.timestamp
            self._arrival = packet.arrival_unix_s
            self._first_seq = packet.ext_seq
            data_start = descriptor
            self._keyframe = len(payload) > data_start and not payload[data_start] & 0x01
        self._parts.append(payload[descriptor:])
        self._last_seq = packet.ext_seq
        if packet.marker:
            self._complete(frames)

    def _want_keyframe_if_waiting(self) -> None:
        if self.waiting_for_keyframe:
            self._keyframe_wanted = True

    def _complete(self, frames: list[Frame]) -> None:
        self._active = False
        data = b"".join(self._parts)
        self._parts = []
        if not data:
            self.stats.frames_dropped += 1
            return
        if self.waiting_for_keyframe and not self._keyframe:
            self.stats.frames_dropped += 1
            self._keyframe_wanted = True
            return
        if self._keyframe:
            self.waiting_for_keyframe = False
            self._keyframe_wanted = False
            self.stats.keyframes += 1
        self.stats.frames += 1
        frames.append(
            Frame(
                data,
                self._timestamp,
                self._keyframe,
                self._arrival,
                self._first_seq,
                self._last_seq,
            )
        )


class OpusDepacketizer:
    """RTP packets of one Opus stream in, Opus packets out (in order, without duplicates)."""

    def __init__(self, *, max_packets: int = 64, max_delay_ms: int = 100) -> None:
        self.stats = DepacketizerStats()
        self._reorder = ReorderBuffer(self.stats, max_packets, max_delay_ms)

    @property
    def keyframe_wanted(self) -> bool:
        return False

    def keyframe_request_due(self, now_unix_s: float) -> bool:
        return False

    def request_keyframe(self) -> None:
        """Audio needs no keyframes."""

    def push(
        self,
        seq: int,
        timestamp: int,
        marker: bool,
        payload: bytes,
        arrival_unix_s: float,
    ) -> list[Frame]:
        packets, _restarted = self._reorder.push(seq, timestamp, marker, payload, arrival_unix_s)
        return self._frames(packets)

    def poll(self, now_unix_s: float) -> list[Frame]:
        return self._frames(self._reorder.poll(now_unix_s))

    def finish(self) -> list[Frame]:
        return self._frames(self._reorder.drain())

    def _frames(self, packets: list[_Packet | None]) -> list[Frame]:
        frames: list[Frame] = []
        for packet in packets:
            if packet is None or not packet.payload:
                continue
            self.stats.frames += 1
            frames.append(
                Frame(
                    packet.payload,
                    packet.timestamp,
                    True,
                    packet.arrival_unix_s,
                    packet.ext_seq,
                    packet.ext_seq,
                )
            )
        return frames


def vp8_frame_size(frame: bytes) -> tuple[int, int] | None:
    """(width, height) of a VP8 keyframe (frame data without a payload descriptor)."""
    if len(frame) < 10 or frame[0] & 0x01 or frame[3:6] != b"\x9d\x01\x2a":
        return None
    width = (frame[6] | (frame[7] << 8)) & 0x3FFF
    height = (frame[8] | (frame[9] << 8)) & 0x3FFF
    return width, height
