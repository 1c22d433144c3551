"""Receive statistics of one stream, without decoding (pure).

Loss from sequence numbers, RFC 3550 jitter, one-way delay through the SFU (sender and receiver
share a clock: the sender's media time comes from the sender reports the SFU forwards), freezes
(gaps between complete frames) and keyframes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

FREEZE_GAP_MS = 200.0
MAX_DELAY_SAMPLES = 20000


def percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))
    return ordered[index]


@dataclass
class StreamStats:
    clock_rate: int
    is_video: bool
    packets: int = 0
    duplicates: int = 0
    first_ext_seq: int | None = None
    highest_ext_seq: int | None = None
    keyframes: int = 0
    frames: int = 0
    freezes: int = 0
    freeze_ms: float = 0.0
    jitter: float = 0.0
    delays_ms: list[float] = field(default_factory=list)
    _seen: set[int] = field(default_factory=set)
    _last_transit: float | None = None
    _last_frame_at: float | None = None
    _sr_ntp_s: float | None = None
    _sr_rtp: int = 0

    def sender_report(self, ntp_seconds: float, rtp_timestamp: int) -> None:
        self._sr_ntp_s = ntp_seconds
        self._sr_rtp = rtp_timestamp

    def packet(
        self, seq: int, timestamp: int, marker: bool, keyframe: bool, arrival_s: float
    ) -> None:
        """One received packet; `arrival_s` on the wall clock the sender's reports use."""
        ext = self._unwrap(seq)
        if ext in self._seen:
            self.duplicates += 1
            return
        self._seen.add(ext)
        if len(self._seen) > 4096:
            floor = ext - 2048
            self._seen = {s for s in self._seen if s > floor}
        self.packets += 1
        if keyframe:
            self.keyframes += 1
        transit = arrival_s * self.clock_rate - timestamp
        if self._last_transit is not None:
            delta = abs(transit - self._last_transit)
            if delta < self.clock_rate:  # ignore timestamp jumps (layer switches)
                self.jitter += (delta - self.jitter) / 16.0
        self._last_transit = transit
        if self._sr_ntp_s is not None and len(self.delays_ms) < MAX_DELAY_SAMPLES:
            offset = (timestamp - self._sr_rtp) & 0xFFFFFFFF
            if offset >= 1 << 31:
                offset -= 1 << 32
            sent_s = self._sr_ntp_s + offset / self.clock_rate
            self.delays_ms.append((arrival_s - sent_s) * 1000.0)
        if self.is_video and marker:
            self.frames += 1
            if self._last_frame_at is not None:
                gap_ms = (arrival_s - self._last_frame_at) * 1000.0
                if gap_ms > FREEZE_GAP_MS:
                    self.freezes += 1
                    self.freeze_ms += gap_ms
            self._last_frame_at = arrival_s

    def _unwrap(self, seq: int) -> int:
        highest = self.highest_ext_seq
        if highest is None:
            ext = (1 << 16) + seq
            self.first_ext_seq = ext
            self.highest_ext_seq = ext
            return ext
        delta = (seq - highest) & 0xFFFF
        if delta < 0x8000:
            ext = highest + delta
            self.highest_ext_seq = ext
        else:
            ext = highest - ((highest - seq) & 0xFFFF)
            if self.first_ext_seq is not None and ext < self.first_ext_seq:
                self.first_ext_seq = ext
        return ext

    @property
    def expected(self) -> int:
        if self.first_ext_seq is None or self.highest_ext_seq is None:
            return 0
        return self.highest_ext_seq - self.first_ext_seq + 1

    @property
    def lost(self) -> int:
        return max(0, self.expected - self.packets)

    @property
    def jitter_ms(self) -> float:
        return self.jitter * 1000.0 / self.clock_rate
