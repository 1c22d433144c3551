"""Stand-ins for a down track's neighbours in the SFU's pure-core tests: the publishing
participant (only keyframe requests) and the subscriber's transport (a sink that keeps what is
sent).
"""

from __future__ import annotations


class FakePublisher:
    """Records keyframe requests instead of sending RTCP."""

    id = "publisher-1"
    cname = "publisher-cname"

    def __init__(self) -> None:
        self.plis: list[int] = []

    def send_pli(self, media_ssrc: int) -> None:
        self.plis.append(media_ssrc)


class Sink:
    """A subscriber's transport, as far as a down track sees it."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def send_rtp(self, data: bytes) -> bool:
        self.sent.append(data)
        return True
