"""Throttling of keyframe requests (PLI/FIR) towards a publisher."""

from __future__ import annotations


class KeyframeRequestThrottle:
    """At most one request per `interval_ms`; a request that comes too soon is kept pending.

    A pending request is sent by `poll` once the interval has passed, unless a keyframe arrived
    in the meantime, so no request is lost and the publisher is never flooded.
    """

    __slots__ = ("_last_request_ms", "interval_ms", "pending")

    def __init__(self, interval_ms: int = 500) -> None:
        self.interval_ms = interval_ms
        self._last_request_ms: int | None = None
        self.pending = False

    def request(self, now_ms: int) -> bool:
        """Someone wants a keyframe. True means: send a request now."""
        if self._last_request_ms is None or now_ms - self._last_request_ms >= self.interval_ms:
            self._last_request_ms = now_ms
            self.pending = False
            return True
        self.pending = True
        return False

    def poll(self, now_ms: int) -> bool:
        """Called regularly: True when a pending request should go out now."""
        if self.pending and (
            self._last_request_ms is None or now_ms - self._last_request_ms >= self.interval_ms
        ):
            self._last_request_ms = now_ms
            self.pending = False
            return True
        return False

    def keyframe_received(self) -> None:
        self.pending = False
