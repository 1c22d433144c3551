"""Unwrapping of 16-bit RTP sequence numbers into extended (`ext_`) sequence numbers."""

from __future__ import annotations

SEQ_MODULO = 1 << 16
TS_MODULO = 1 << 32
MAX_DROPOUT = 3000
MAX_MISORDER = 100


class SequenceUnwrapper:
    """Turns 16-bit sequence numbers into monotonic extended ones (RFC 3550 appendix A.1 style).

    `unwrap` returns the extended sequence number, or -1 when the jump is so large that the stream
    has restarted: the caller then calls `reset`.
    """

    __slots__ = ("highest_ext_seq",)

    def __init__(self) -> None:
        self.highest_ext_seq = -1

    def reset(self) -> None:
        self.highest_ext_seq = -1

    def unwrap(self, seq: int) -> int:
        highest = self.highest_ext_seq
        if highest < 0:
            # Start in the second cycle so that early reordered packets stay positive.
            self.highest_ext_seq = SEQ_MODULO + seq
            return self.highest_ext_seq
        delta = (seq - highest) & 0xFFFF
        if delta < MAX_DROPOUT:
            ext_seq = highest + delta
            self.highest_ext_seq = ext_seq
            return ext_seq
        back = SEQ_MODULO - delta
        if back <= MAX_MISORDER:
            return highest - back
        return -1


def seq_newer(a: int, b: int) -> bool:
    """Whether 16-bit sequence number a is newer than b."""
    return a != b and ((a - b) & 0xFFFF) < 0x8000
