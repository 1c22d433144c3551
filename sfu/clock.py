"""The SFU's clocks: one monotonic millisecond clock for every object, and abs-send-time.

Every timestamp the SFU keeps (`last_packet_ms`, throttles, reports, allocation) is on this
clock, so objects can compare each other's times.
"""

from __future__ import annotations

import time

monotonic_ns = time.monotonic_ns


def now_ms() -> int:
    """Milliseconds on the monotonic clock."""
    return time.monotonic_ns() // 1_000_000


def abs_send_time(now_ns: int) -> int:
    """The abs-send-time header extension's value (6.18 fixed-point seconds) for a moment.

    The packet path computes this inline; the formula is the same.
    """
    return ((now_ns // 1000) << 18) // 1_000_000
