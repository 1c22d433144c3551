"""Receiver side of transport-wide congestion control (draft-holmer-rmcat-transport-wide-cc-01).

A publisher numbers every packet it sends on the transport (media, RTX, padding) with a 16-bit
transport-wide sequence number in a header extension. `TwccRecorder` records when each number
arrived and turns that into RTCP transport feedback (RTPFB, FMT=15), which the publisher's
send-side bandwidth estimation (GoogCC) needs.

Feedback message layout (after the 12-byte RTPFB header with both SSRCs)::

    | base sequence number (16)      | packet status count (16)    |
    | reference time (24, signed, x 64 ms)          | fb pkt count |
    | packet status chunks (16 each) ...  | recv deltas (8 or 16) ... | padding |

Statuses: 0 not received, 1 received with a small delta (one byte, 0..255 ticks of 250 µs),
2 received with a large or negative delta (two bytes, signed). The first delta is relative to
the reference time, the others to the previous received packet (in sequence-number order).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from sfu.rtcp import RTCP_RTPFB, RTPFB_TWCC, RtcpError

SEQ_MODULO = 1 << 16
DELTA_TICK_US = 250
REFERENCE_TICK_US = 64_000  # 256 delta ticks
REFERENCE_MODULO = 1 << 24
MAX_SPAN = 1 << 15  # most sequence numbers one build covers; beyond that, start over
MAX_RUN_LENGTH = 0x1FFF
ONE_BIT_CAPACITY = 14
TWO_BIT_CAPACITY = 7
MAX_STATUS_COUNT = 0xFFFF

STATUS_NOT_RECEIVED = 0
STATUS_SMALL_DELTA = 1
STATUS_LARGE_DELTA = 2

_HEADER_SIZE = 20  # RTCP header, two SSRCs, base/count, reference time/fb count


@dataclass(frozen=True)
class TwccFeedback:
    sender_ssrc: int
    media_ssrc: int
    base_seq: int
    reference_time_64ms: int  # signed 24-bit, in units of 64 ms
    fb_count: int
    # (16-bit transport sequence number, arrival in µs on the reference time's clock or None)
    packets: tuple[tuple[int, int | None], ...]


class _Feedback:
    """One feedback message being assembled: statuses and deltas from base_seq on."""

    __slots__ = ("base", "deltas", "reference", "symbols")

    def __init__(self, base: int) -> None:
        self.base = base
        self.symbols: list[int] = []
        self.deltas: list[int] = []
        self.reference: int | None = None  # in 64 ms ticks, from the first received packet


class TwccRecorder:
    """Arrival times of one transport's packets, turned into transport feedback on demand.

    `record` is called for every incoming packet carrying the transport-wide sequence number;
    `build_feedback` periodically (typically every 50-100 ms) returns the RTCP packets to send.
    Every sequence number from the start of the first feedback on is reported exactly once:
    received (with its arrival time) or not received. A packet arriving after a feedback that
    already covered its number is dropped.
    """

    __slots__ = ("_arrivals", "_end", "_fb_count", "_highest", "_reported", "_start", "max_packets")

    def __init__(self, max_packets_per_feedback: int = 500) -> None:
        if not 1 <= max_packets_per_feedback <= MAX_STATUS_COUNT:
            raise ValueError("max_packets_per_feedback must be in 1..65535")
        self.max_packets = max_packets_per_feedback
        self._arrivals: dict[int, int] = {}  # extended seq -> arrival µs, not yet reported
        self._highest = -1  # highest extended seq seen, the reference for unwrapping
        self._start = -1  # first extended seq the next feedback covers
        self._end = -1  # highest unreported received extended seq
        self._reported = False  # whether a feedback has fixed `_start`
        self._fb_count = 0

    def record(self, transport_seq: int, arrival_us: int) -> None:
        highest = self._highest
        if highest < 0:
            # Start in the second cycle so that early reordered packets stay positive.
            ext = SEQ_MODULO + (transport_seq & 0xFFFF)
            self._highest = ext
        else:
            ext = highest + ((transport_seq - highest + 0x8000) & 0xFFFF) - 0x8000
            if ext > highest:
                self._highest = ext
        arrivals = self._arrivals
        start = self._start
        if start < 0:
            self._start = self._end = ext
            arrivals[ext] = arrival_us
            return
        if ext < start:
            if self._reported or self._end - ext >= MAX_SPAN:
                return  # already covered by a feedback (late or duplicate), or far too old
            self._start = ext  # reordered before the first feedback: extend the window back
        elif ext in arrivals:
            return  # duplicate
        elif ext - start >= MAX_SPAN:
            arrivals.clear()  # too far ahead to report the gap: start over from the newest
            self._start = self._end = ext
            arrivals[ext] = arrival_us
            return
        arrivals[ext] = arrival_us
        if ext > self._end:
            self._end = ext

    def build_feedback(self, sender_ssrc: int, media_ssrc: int) -> list[bytes]:
        """RTCP transport feedback for everything recorded since the last call; [] if nothing."""
        arrivals = self._arrivals
        if not arrivals:
            return []
        end = self._end
        feedbacks: list[_Feedback] = []
        current = _Feedback(self._start)
        last_us = 0
        for ext in range(self._start, end + 1):
            if len(current.symbols) >= self.max_packets:
                feedbacks.append(current)
                current = _Feedback(ext)
            arrival_us = arrivals.get(ext)
            if arrival_us is None:
                current.symbols.append(STATUS_NOT_RECEIVED)
                continue
            if current.reference is None:
                current.reference = arrival_us // REFERENCE_TICK_US
                last_us = current.reference * REFERENCE_TICK_US
            ticks = (arrival_us - last_us + DELTA_TICK_US // 2) // DELTA_TICK_US
            if not -0x8000 <= ticks <= 0x7FFF:
                # Does not fit in a large delta: new feedback with a new reference time.
                feedbacks.append(current)
                current = _Feedback(ext)
                current.reference = arrival_us // REFERENCE_TICK_US
                last_us = current.reference * REFERENCE_TICK_US
                ticks = (arrival_us - last_us + DELTA_TICK_US // 2) // DELTA_TICK_US
            last_us += ticks * DELTA_TICK_US
            current.symbols.append(STATUS_SMALL_DELTA if 0 <= ticks <= 0xFF else STATUS_LARGE_DELTA)
            current.deltas.append(ticks)
        feedbacks.append(current)
        arrivals.clear()
        self._start = end + 1
        self._end = -1
        self._reported = True

        # A feedback of only lost packets takes the reference time of the next received one.
        reference = 0
        for feedback in reversed(feedbacks):
            if feedback.reference is None:
                feedback.reference = reference
            reference = feedback.reference
        packets: list[bytes] = []
        for feedback in feedbacks:
            packets.append(_pack(sender_ssrc, media_ssrc, feedback, self._fb_count))
            self._fb_count = (self._fb_count + 1) & 0xFF
        return packets


def encode_status_chunks(symbols: Sequence[int]) -> list[int]:
    """Packet status chunks for a list of statuses.

    A run-length chunk when a run is at least as long as the vector that could hold it (or ends
    the list), else a one-bit vector (14 statuses) when no large delta is among them, else a
    two-bit vector (7 statuses). The last vector may be partly used.
    """
    chunks: list[int] = []
    count = len(symbols)
    index = 0
    while index < count:
        symbol = symbols[index]
        run_end = index + 1
        limit = min(count, index + MAX_RUN_LENGTH)
        while run_end < limit and symbols[run_end] == symbol:
            run_end += 1
        run = run_end - index
        if run >= ONE_BIT_CAPACITY or run_end == count:
            chunks.append((symbol << 13) | run)
            index = run_end
            continue
        window = symbols[index : index + ONE_BIT_CAPACITY]
        if STATUS_LARGE_DELTA not in window:
            chunk = 0x8000
            for position, status in enumerate(window):
                chunk |= status << (13 - position)
            chunks.append(chunk)
            index += len(window)
        elif run >= TWO_BIT_CAPACITY:
            chunks.append((symbol << 13) | run)
            index = run_end
        else:
            chunk = 0xC000
            window = symbols[index : index + TWO_BIT_CAPACITY]
            for position, status in enumerate(window):
                chunk |= status << (12 - 2 * position)
            chunks.append(chunk)
            index += len(window)
    return chunks


def _pack(sender_ssrc: int, media_ssrc: int, feedback: _Feedback, fb_count: int) -> bytes:
    chunks = encode_status_chunks(feedback.symbols)
    reference = (feedback.reference or 0) % REFERENCE_MODULO
    body = bytearray(
        struct.pack(
            "!IIHHI",
            sender_ssrc,
            media_ssrc,
            feedback.base & 0xFFFF,
            len(feedback.symbols),
            (reference << 8) | fb_count,
        )
    )
    body += struct.pack(f"!{len(chunks)}H", *chunks)
    for ticks in feedback.deltas:
        if 0 <= ticks <= 0xFF:
            body.append(ticks)
        else:
            body += struct.pack("!h", ticks)
    # Pad to 32 bits as libwebrtc does: zeros, the last byte the padding count, P bit set.
    padding = -(4 + len(body)) % 4
    first = 0x80 | RTPFB_TWCC
    if padding:
        body += bytes(padding - 1) + bytes([padding])
        first |= 0x20
    return struct.pack("!BBH", first, RTCP_RTPFB, (4 + len(body)) // 4 - 1) + bytes(body)


def parse_twcc(data: bytes) -> TwccFeedback:
    """Parse one transport feedback packet (the first RTCP packet in `data`).

    Arrival times are rebuilt from the reference time and the deltas, so they are in the
    feedback sender's clock modulo the 24-bit reference time wrap (about 12.4 days).
    Raises RtcpError when the packet is not a well-formed transport feedback.
    """
    if len(data) < _HEADER_SIZE:
        raise RtcpError("truncated transport feedback")
    first, packet_type, length = struct.unpack_from("!BBH", data)
    if first >> 6 != 2:
        raise RtcpError("bad RTCP version")
    if packet_type != RTCP_RTPFB or first & 0x1F != RTPFB_TWCC:
        raise RtcpError("not a transport feedback packet")
    end = 4 * (length + 1)
    if end > len(data) or end < _HEADER_SIZE:
        raise RtcpError("bad transport feedback length")
    if first & 0x20:
        padding = data[end - 1]
        if padding == 0 or end - padding < _HEADER_SIZE:
            raise RtcpError("bad padding")
        end -= padding
    sender_ssrc, media_ssrc, base_seq, status_count, word = struct.unpack_from("!IIHHI", data, 4)
    reference = word >> 8
    if reference & 0x800000:
        reference -= REFERENCE_MODULO
    fb_count = word & 0xFF
    if status_count == 0:
        raise RtcpError("empty transport feedback")

    symbols: list[int] = []
    offset = _HEADER_SIZE
    while len(symbols) < status_count:
        if offset + 2 > end:
            raise RtcpError("truncated packet status chunks")
        (chunk,) = struct.unpack_from("!H", data, offset)
        offset += 2
        remaining = status_count - len(symbols)
        if not chunk & 0x8000:
            symbols.extend([(chunk >> 13) & 0x3] * min(chunk & MAX_RUN_LENGTH, remaining))
        elif not chunk & 0x4000:
            for position in range(min(ONE_BIT_CAPACITY, remaining)):
                symbols.append((chunk >> (13 - position)) & 0x1)
        else:
            for position in range(min(TWO_BIT_CAPACITY, remaining)):
                symbols.append((chunk >> (12 - 2 * position)) & 0x3)

    packets: list[tuple[int, int | None]] = []
    time_us = reference * REFERENCE_TICK_US
    for index, symbol in enumerate(symbols):
        seq = (base_seq + index) & 0xFFFF
        if symbol == STATUS_NOT_RECEIVED:
            packets.append((seq, None))
            continue
        if symbol == STATUS_SMALL_DELTA:
            if offset + 1 > end:
                raise RtcpError("truncated receive deltas")
            ticks = data[offset]
            offset += 1
        elif symbol == STATUS_LARGE_DELTA:
            if offset + 2 > end:
                raise RtcpError("truncated receive deltas")
            (ticks,) = struct.unpack_from("!h", data, offset)
            offset += 2
        else:
            raise RtcpError("reserved packet status symbol")
        time_us += ticks * DELTA_TICK_US
        packets.append((seq, time_us))
    return TwccFeedback(sender_ssrc, media_ssrc, base_seq, reference, fb_count, tuple(packets))
