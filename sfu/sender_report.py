"""NTP/RTP time mapping from a publisher's sender reports, translated for each subscriber."""

from __future__ import annotations

NTP_EPOCH_OFFSET = 2208988800  # seconds from 1900 to 1970


def ntp_from_unix(seconds: float) -> int:
    whole = int(seconds)
    return ((whole + NTP_EPOCH_OFFSET) << 32) | int((seconds - whole) * (1 << 32))


def ntp_to_unix(ntp: int) -> float:
    return (ntp >> 32) - NTP_EPOCH_OFFSET + (ntp & 0xFFFFFFFF) / (1 << 32)


def ntp_middle_32(ntp: int) -> int:
    return (ntp >> 16) & 0xFFFFFFFF


class SenderReportClock:
    """The latest sender report of one incoming stream and when it arrived (local ms clock).

    `project(now_ms)` gives the publisher's (NTP, RTP) pair at a later local moment, so sender
    reports for forwarded streams keep the publisher's audio/video relation: audio and video of one
    publisher share its NTP clock, which keeps lip sync in the subscriber.
    """

    __slots__ = ("clock_rate", "ntp", "received_ms", "rtp_timestamp")

    def __init__(self, clock_rate: int) -> None:
        self.clock_rate = clock_rate
        self.ntp = 0
        self.rtp_timestamp = 0
        self.received_ms = -1

    @property
    def known(self) -> bool:
        return self.received_ms >= 0

    def update(self, ntp: int, rtp_timestamp: int, now_ms: int) -> None:
        self.ntp = ntp
        self.rtp_timestamp = rtp_timestamp
        self.received_ms = now_ms

    def project(self, now_ms: int) -> tuple[int, int]:
        """(64-bit NTP, 32-bit RTP timestamp) of the publisher's clock at local time now_ms."""
        elapsed_ms = now_ms - self.received_ms
        ntp = self.ntp + (elapsed_ms << 32) // 1000
        rtp = (self.rtp_timestamp + elapsed_ms * self.clock_rate // 1000) & 0xFFFFFFFF
        return ntp, rtp

    def delay_since_last_sr(self, now_ms: int) -> int:
        """DLSR in 1/65536 seconds, for receiver reports."""
        if not self.known:
            return 0
        return max(0, (now_ms - self.received_ms) * 65536 // 1000)
