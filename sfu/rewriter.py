"""Per-subscriber rewriting of sequence numbers and timestamps.

A subscriber sees one continuous stream with its own SSRC, whatever happens upstream: the publisher
restarting its stream, a layer switch, packets the forwarder drops on purpose. Each run of packets
from one source ("segment") has a fixed offset from incoming extended sequence numbers to outgoing
ones, and a fixed timestamp offset. The segments are kept so a NACK for an outgoing sequence number
can be mapped back to the incoming packet in the retransmission buffer.

At a switch the outgoing timestamps jump ahead by the wall-clock time since the last packet, but
never by less than one frame step of the old source: the first frame of a new layer often arrives
a few milliseconds after the last frame of the old one while showing the next moment (or even the
same captured moment), and a receiver (a browser's jitter buffer, the recorder) needs frames at
least a frame apart.
"""

from __future__ import annotations

from dataclasses import dataclass

from sfu.seq import SEQ_MODULO, TS_MODULO

MAX_SEGMENTS = 16


@dataclass
class _Segment:
    source: int  # an identifier of the upstream source (e.g. SSRC with a restart generation)
    first_in_ext_seq: int
    seq_offset: int  # out_ext_seq = in_ext_seq + seq_offset
    ts_offset: int  # out_timestamp = in_timestamp + ts_offset (mod 2**32)


class RtpRewriter:
    """Maps (source, in_ext_seq, in_timestamp) to (out_seq, out_timestamp) for one subscriber."""

    __slots__ = (
        "_frame_step",
        "_last_in_ts",
        "_last_out_ts",
        "_last_out_wallclock_ms",
        "_segments",
        "_source",
        "_ts_offset",
        "clock_rate",
        "highest_in_ext_seq",
        "highest_out_ext_seq",
    )

    def __init__(self, clock_rate: int, initial_seq: int, initial_timestamp: int) -> None:
        self.clock_rate = clock_rate
        self._segments: list[_Segment] = []
        self._source = -1
        self._ts_offset = 0
        # The first packet becomes initial_seq / initial_timestamp.
        self.highest_out_ext_seq = SEQ_MODULO + (initial_seq & 0xFFFF) - 1
        self._last_out_ts = (initial_timestamp - 1) % TS_MODULO
        self._last_out_wallclock_ms = -1
        self.highest_in_ext_seq = -1
        self._last_in_ts = -1
        self._frame_step = 0  # timestamp step between the newest two frames of this source

    @property
    def started(self) -> bool:
        return self._source != -1

    @property
    def ts_offset(self) -> int:
        return self._ts_offset

    def _start_segment(self, source: int, in_ext_seq: int, in_timestamp: int, now_ms: int) -> None:
        seq_offset = self.highest_out_ext_seq + 1 - in_ext_seq
        if self._last_out_wallclock_ms < 0:
            ts_advance = 1
        else:
            elapsed_ms = max(0, now_ms - self._last_out_wallclock_ms)
            ts_advance = max(1, self._frame_step, elapsed_ms * self.clock_rate // 1000)
        self._ts_offset = (self._last_out_ts + ts_advance - in_timestamp) % TS_MODULO
        self._segments.append(_Segment(source, in_ext_seq, seq_offset, self._ts_offset))
        if len(self._segments) > MAX_SEGMENTS:
            del self._segments[0]
        self._source = source
        self.highest_in_ext_seq = in_ext_seq - 1
        self._last_in_ts = -1

    def rewrite(
        self, source: int, in_ext_seq: int, in_timestamp: int, now_ms: int
    ) -> tuple[int, int] | None:
        """Outgoing (16-bit seq, 32-bit timestamp); None for a packet older than its segment.

        A packet from a new source starts a new segment that continues the outgoing numbering.
        """
        if source != self._source:
            self._start_segment(source, in_ext_seq, in_timestamp, now_ms)
        segment = self._segments[-1]
        if in_ext_seq < segment.first_in_ext_seq:
            return None
        out_ext_seq = in_ext_seq + segment.seq_offset
        out_ts = (in_timestamp + self._ts_offset) % TS_MODULO
        if in_ext_seq > self.highest_in_ext_seq:
            last_in_ts = self._last_in_ts
            if last_in_ts >= 0 and in_timestamp != last_in_ts:
                step = (in_timestamp - last_in_ts) % TS_MODULO
                if step <= self.clock_rate // 5:  # a frame step, not a gap (at most 200 ms)
                    self._frame_step = step
            self._last_in_ts = in_timestamp
            self.highest_in_ext_seq = in_ext_seq
            self.highest_out_ext_seq = out_ext_seq
            self._last_out_ts = out_ts
            self._last_out_wallclock_ms = now_ms
        return out_ext_seq & 0xFFFF, out_ts

    def skip(self, source: int, in_ext_seq: int) -> None:
        """Forget an incoming packet on purpose (padding, dropped frame): no gap for the subscriber.

        Only the newest packet can be skipped without a gap; an older one leaves its gap.
        """
        if source != self._source or in_ext_seq != self.highest_in_ext_seq + 1:
            return
        segment = self._segments[-1]
        self._segments.append(
            _Segment(source, in_ext_seq + 1, segment.seq_offset - 1, segment.ts_offset)
        )
        if len(self._segments) > MAX_SEGMENTS:
            del self._segments[0]
        self.highest_in_ext_seq = in_ext_seq

    def unwrap_out_seq(self, out_seq: int) -> int:
        """Extended form of an outgoing 16-bit sequence number near the newest one."""
        highest = self.highest_out_ext_seq
        delta = (out_seq - highest) & 0xFFFF
        if delta >= 0x8000:
            delta -= SEQ_MODULO
        return highest + delta

    def source_for_out_seq(self, out_seq: int) -> tuple[int, int, int] | None:
        """Map an outgoing sequence number back to (source, in_ext_seq, ts_offset)."""
        if not self._segments:
            return None
        out_ext_seq = self.unwrap_out_seq(out_seq)
        if out_ext_seq > self.highest_out_ext_seq:
            return None
        for index in range(len(self._segments) - 1, -1, -1):
            segment = self._segments[index]
            in_ext_seq = out_ext_seq - segment.seq_offset
            if in_ext_seq >= segment.first_in_ext_seq:
                if index + 1 < len(self._segments):
                    following = self._segments[index + 1]
                    if (
                        following.source == segment.source
                        and in_ext_seq >= following.first_in_ext_seq
                    ):
                        return None  # that number was skipped
                return segment.source, in_ext_seq, segment.ts_offset
        return None
