"""One participant's SDP negotiation: the page's one offer, then every offer made by the SFU.

The page offers its own tracks once; after the SFU's answer, the SFU makes every offer, one at a
time. This object keeps the m-lines of the participant's session description and what the page
has agreed to; it does no I/O (the participant sends what it returns).
"""

from __future__ import annotations

import secrets
from typing import NamedTuple

from sfu.errors import SignallingError
from sfu.publication import Publication
from sfu.sdp import (
    ABS_SEND_TIME_URI,
    DEFAULT_OPUS,
    DEFAULT_VP8,
    SEND_VIDEO_FEEDBACK,
    Codec,
    LocalMediaLine,
    LocalTransport,
    OfferedMedia,
    RemoteTransport,
    SdpError,
    build_sdp,
    parse_sdp,
    read_answer,
    read_offer,
)

Signature = tuple[tuple[str, str, int | None], ...]


def random_ssrc(taken: set[int]) -> int:
    while True:
        ssrc = secrets.randbits(32)
        if ssrc and ssrc not in taken:
            taken.add(ssrc)
            return ssrc


class SendLine(NamedTuple):
    """A sendonly m-line added for a down track."""

    mid: str
    ssrc: int
    payload_type: int


class Negotiation:
    """The m-lines of one participant's session description and the offer/answer state."""

    def __init__(self) -> None:
        self.ssrcs: set[int] = set()  # every SSRC the SFU sends to this participant with
        self.abs_send_time_id: int | None = None
        self.negotiated_mids: set[str] = set()  # mids the page has answered
        self._lines: list[LocalMediaLine] = []
        self._session_id = secrets.randbits(62)
        self._sdp_version = 0
        self._offered = False  # the page's one offer has come
        self._answered = False  # ... and the SFU has answered it
        self._negotiated: Signature = ()
        self._offer_in_flight: list[str] | None = None  # mids of the SFU's unanswered offer
        self._offered_signature: Signature = ()
        self._renegotiate = False
        self._audio_codec = DEFAULT_OPUS
        self._video_codec = DEFAULT_VP8

    def new_ssrc(self) -> int:
        return random_ssrc(self.ssrcs)

    @property
    def answered(self) -> bool:
        """Whether the SFU has answered the page's one offer: from then on the SFU makes offers."""
        return self._answered

    @property
    def offer_pending(self) -> bool:
        """An offer was asked for while another was in flight (or before the answer)."""
        return self._renegotiate

    # -- the page's offer --------------------------------------------------------------------

    def take_offer(self, sdp: str) -> tuple[RemoteTransport, list[OfferedMedia]]:
        """Read the page's one offer and take its m-lines as this session's first ones."""
        if self._offered:
            raise SignallingError("unexpected_message", "only one offer per connection is allowed")
        try:
            description = parse_sdp(sdp)
            remote, offered = read_offer(description)
        except SdpError as exc:
            raise SignallingError("bad_sdp", str(exc)) from exc
        self._offered = True
        self.abs_send_time_id = abs_send_time_id(
            {
                uri: ext_id
                for section in description.media
                for uri, ext_id in section.extmap().items()
            }
        )
        for media in offered:
            self._lines.append(
                LocalMediaLine(
                    mid=media.mid,
                    kind=media.kind,
                    direction=media.direction,
                    codec=media.codec,
                    extensions=media.extensions,
                    proto=media.proto,
                    formats=media.formats,
                    rids=media.rids,
                )
            )
            if media.codec is None:
                continue
            if media.kind == "audio":
                self._audio_codec = media.codec
            else:
                self._video_codec = media.codec
        return remote, offered

    def answer_sent(self) -> None:
        """The SFU's answer went out: what it described is agreed, and the SFU offers from now."""
        self._negotiated = self._signature()
        self._answered = True

    # -- the SFU's offers --------------------------------------------------------------------

    def offer_due(self) -> bool:
        """Whether an offer may go now; if not, one is made after the page's answer."""
        if not self._answered or self._offer_in_flight is not None:
            self._renegotiate = True
            return False
        return True

    def next_offer(self) -> list[str] | None:
        """The mids of the offer to send now; None when the page already has all of it."""
        self._renegotiate = False
        signature = self._signature()
        if signature == self._negotiated:
            return None  # nothing changed since the page last agreed
        self._offered_signature = signature
        self._offer_in_flight = [line.mid for line in self._lines]
        return self._offer_in_flight

    def take_answer(self, sdp: str) -> None:
        """The page's answer to the offer in flight."""
        if self._offer_in_flight is None:
            raise SignallingError("unexpected_message", "there is no offer to answer")
        try:
            read_answer(parse_sdp(sdp), self._offer_in_flight)
        except SdpError as exc:
            raise SignallingError("bad_sdp", str(exc)) from exc
        self.negotiated_mids.update(self._offer_in_flight)
        self._offer_in_flight = None
        self._negotiated = self._offered_signature

    def describe(self, setup: str, transport: LocalTransport) -> str:
        """The session description (answer: setup "active"; offer: "actpass")."""
        self._sdp_version += 1
        return build_sdp(
            session_id=self._session_id,
            version=self._sdp_version,
            setup=setup,
            transport=transport,
            lines=self._lines,
        )

    def _signature(self) -> Signature:
        return tuple((line.mid, line.direction, line.ssrc) for line in self._lines)

    # -- the tracks the SFU sends ------------------------------------------------------------

    def add_send_line(self, publication: Publication) -> SendLine:
        """A sendonly m-line for a publication (negotiated by the next offer)."""
        if not self._answered:
            raise RuntimeError("subscriptions come after the answer to the page's own offer")
        if publication.kind == "audio":
            codec = Codec(
                self._audio_codec.payload_type,
                "opus",
                self._audio_codec.clock_rate,
                self._audio_codec.channels,
                self._audio_codec.fmtp,
            )
            extensions: list[tuple[int, str]] = []
        else:
            codec = Codec(
                self._video_codec.payload_type, "VP8", 90000, None, None, SEND_VIDEO_FEEDBACK
            )
            extensions = (
                [(self.abs_send_time_id, ABS_SEND_TIME_URI)] if self.abs_send_time_id else []
            )
        mid = self._allocate_mid()
        ssrc = self.new_ssrc()
        self._lines.append(
            LocalMediaLine(
                mid=mid,
                kind=publication.kind,
                direction="sendonly",
                codec=codec,
                extensions=extensions,
                ssrc=ssrc,
                cname=publication.publisher.cname,
                stream_id=publication.publisher.id,
                track_id=publication.track_id,
            )
        )
        return SendLine(mid, ssrc, codec.payload_type)

    def remove_send_line(self, mid: str) -> None:
        """The m-line of a removed down track becomes inactive (m-lines are never reused)."""
        self.negotiated_mids.discard(mid)
        for line in self._lines:
            if line.mid == mid:
                line.direction = "inactive"
                line.ssrc = None

    def _allocate_mid(self) -> str:
        taken = {line.mid for line in self._lines}
        index = len(self._lines)
        while str(index) in taken:
            index += 1
        return str(index)


def abs_send_time_id(offered: dict[str, int]) -> int | None:
    """The abs-send-time extension id for the SFU's own video: the page's, or a free one."""
    if ABS_SEND_TIME_URI in offered:
        return offered[ABS_SEND_TIME_URI]
    used = set(offered.values())
    return next((ext_id for ext_id in range(1, 15) if ext_id not in used), None)
