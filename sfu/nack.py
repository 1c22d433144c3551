"""Detects lost packets from a publisher and decides when to ask for them again (NACK)."""

from __future__ import annotations

MAX_MISSING = 200
MAX_GAP = 300


class NackGenerator:
    """Tracks missing extended sequence numbers of one incoming stream."""

    __slots__ = ("_highest", "_missing", "max_age_ms", "max_tries", "retry_interval_ms")

    def __init__(
        self, retry_interval_ms: int = 40, max_tries: int = 5, max_age_ms: int = 1000
    ) -> None:
        self.retry_interval_ms = retry_interval_ms
        self.max_tries = max_tries
        self.max_age_ms = max_age_ms
        self._highest = -1
        # ext_seq -> [first_missed_ms, last_request_ms, tries]
        self._missing: dict[int, list[int]] = {}

    def reset(self) -> None:
        self._highest = -1
        self._missing.clear()

    @property
    def missing(self) -> list[int]:
        return sorted(self._missing)

    def packet_received(self, ext_seq: int, now_ms: int) -> None:
        highest = self._highest
        if highest < 0:
            self._highest = ext_seq
            return
        if ext_seq > highest:
            gap = ext_seq - highest - 1
            if gap > MAX_GAP:
                self._missing.clear()  # too much lost to recover: start over
            else:
                for missed in range(highest + 1, ext_seq):
                    self._missing[missed] = [now_ms, -1, 0]
                while len(self._missing) > MAX_MISSING:
                    del self._missing[min(self._missing)]
            self._highest = ext_seq
        elif self._missing:
            self._missing.pop(ext_seq, None)

    def due(self, now_ms: int) -> list[int]:
        """The sequence numbers to NACK now; gives up on old or often-requested ones."""
        result: list[int] = []
        expired: list[int] = []
        for ext_seq, state in self._missing.items():
            first_ms, last_ms, tries = state
            if tries >= self.max_tries or now_ms - first_ms > self.max_age_ms:
                expired.append(ext_seq)
                continue
            if last_ms < 0 or now_ms - last_ms >= self.retry_interval_ms:
                state[1] = now_ms
                state[2] = tries + 1
                result.append(ext_seq)
        for ext_seq in expired:
            del self._missing[ext_seq]
        return result
