"""SDP reading and writing for the forwarding unit (pure; RFC 8866, JSEP RFC 8829 subset).

The SFU keeps one BUNDLEd transport per participant. The page offers its microphone and camera
once; after that the SFU makes every offer, so these functions build both an answer to the page's
first offer and the SFU's own offers from the same description of the m-lines.
"""

from __future__ import annotations

from dataclasses import dataclass, field

AUDIO_LEVEL_URI = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
MID_URI = "urn:ietf:params:rtp-hdrext:sdes:mid"
RID_URI = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"
REPAIRED_RID_URI = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id"
TWCC_URI = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
ABS_SEND_TIME_URI = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
# What the SFU takes from a publisher: transport-wide sequence numbers on everything, so the
# publisher's browser gets transport-cc feedback and its bandwidth estimate ramps up quickly.
SUPPORTED_EXTENSIONS = {
    "audio": (MID_URI, AUDIO_LEVEL_URI, TWCC_URI),
    "video": (MID_URI, RID_URI, REPAIRED_RID_URI, TWCC_URI),
}
VIDEO_FEEDBACK = ("nack", "nack pli", "ccm fir", "goog-remb", "transport-cc")
AUDIO_FEEDBACK = ("transport-cc",)
# Chrome starts its bandwidth estimate at this (kbit/s) instead of 300, so with transport-cc
# feedback all three simulcast layers start within seconds.
PUBLISH_VP8_FMTP = "x-google-start-bitrate=1500"
# What the SFU offers a subscriber: its browser estimates the downlink from abs-send-time and
# reports it with REMB.
SEND_VIDEO_FEEDBACK = ("nack", "nack pli", "ccm fir", "goog-remb")
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
MAX_SDP_SIZE = 64 * 1024


class SdpError(ValueError):
    """An SDP that cannot be used; the message is safe to show to the sender."""


@dataclass
class MediaSection:
    kind: str
    port: int
    proto: str
    formats: list[str]
    attributes: list[tuple[str, str | None]] = field(default_factory=list)

    def values(self, name: str) -> list[str]:
        return [v for n, v in self.attributes if n == name and v is not None]

    def value(self, name: str) -> str | None:
        for n, v in self.attributes:
            if n == name:
                return v
        return None

    def has(self, name: str) -> bool:
        return any(n == name for n, _ in self.attributes)

    @property
    def mid(self) -> str | None:
        return self.value("mid")

    @property
    def direction(self) -> str:
        for name, _ in self.attributes:
            if name in DIRECTIONS:
                return name
        return "sendrecv"

    def rtpmap(self) -> dict[int, tuple[str, int, int | None]]:
        """payload type -> (codec name, clock rate, channels)."""
        result: dict[int, tuple[str, int, int | None]] = {}
        for value in self.values("rtpmap"):
            try:
                pt_text, encoding = value.split(" ", 1)
                parts = encoding.strip().split("/")
                channels = int(parts[2]) if len(parts) > 2 else None
                result[int(pt_text)] = (parts[0], int(parts[1]), channels)
            except (ValueError, IndexError) as exc:
                raise SdpError(f"bad rtpmap line: {value[:60]}") from exc
        return result

    def fmtp(self) -> dict[int, str]:
        result: dict[int, str] = {}
        for value in self.values("fmtp"):
            pt_text, _, params = value.partition(" ")
            if pt_text.isdigit():
                result[int(pt_text)] = params.strip()
        return result

    def rtcp_fb(self, payload_type: int) -> list[str]:
        result = []
        for value in self.values("rtcp-fb"):
            pt_text, _, feedback = value.partition(" ")
            if pt_text in (str(payload_type), "*"):
                result.append(feedback.strip())
        return result

    def extmap(self) -> dict[str, int]:
        """URI -> extension id."""
        result: dict[str, int] = {}
        for value in self.values("extmap"):
            parts = value.split()
            if len(parts) >= 2:
                ext_id = parts[0].split("/")[0]
                if ext_id.isdigit():
                    result[parts[1]] = int(ext_id)
        return result

    def ssrcs(self) -> list[int]:
        """SSRCs in order of appearance; with an FID group, the media SSRC comes first."""
        seen: list[int] = []
        for value in self.values("ssrc"):
            head = value.split(" ", 1)[0]
            if head.isdigit() and int(head) not in seen:
                seen.append(int(head))
        for value in self.values("ssrc-group"):
            parts = value.split()
            if parts and parts[0] == "FID" and len(parts) >= 2 and parts[1].isdigit():
                media = int(parts[1])
                if media in seen:
                    seen.remove(media)
                seen.insert(0, media)
        return seen


@dataclass
class SessionDescription:
    attributes: list[tuple[str, str | None]]
    media: list[MediaSection]

    def value(self, name: str) -> str | None:
        for n, v in self.attributes:
            if n == name:
                return v
        return None

    def media_value(self, section: MediaSection, name: str) -> str | None:
        """A media-level attribute, falling back to the session level."""
        value = section.value(name)
        return value if value is not None else self.value(name)

    @property
    def bundle_mids(self) -> list[str]:
        for value in (v for n, v in self.attributes if n == "group" and v):
            parts = value.split()
            if parts and parts[0] == "BUNDLE":
                return parts[1:]
        return []


def parse_sdp(text: str) -> SessionDescription:
    if not isinstance(text, str) or not text.strip():
        raise SdpError("the SDP is empty")
    if len(text) > MAX_SDP_SIZE:
        raise SdpError("the SDP is too large")
    lines = [line.strip() for line in text.replace("\r\n", "\n").split("\n") if line.strip()]
    if not lines or lines[0] != "v=0":
        raise SdpError("the SDP must start with v=0")
    session_attributes: list[tuple[str, str | None]] = []
    media: list[MediaSection] = []
    for line in lines[1:]:
        if len(line) < 2 or line[1] != "=" or not line[0].isalpha():
            raise SdpError(f"bad SDP line: {line[:60]}")
        key, value = line[0], line[2:]
        if key == "m":
            parts = value.split()
            if len(parts) < 4 or not parts[1].split("/")[0].isdigit():
                raise SdpError(f"bad m-line: {line[:60]}")
            media.append(MediaSection(parts[0], int(parts[1].split("/")[0]), parts[2], parts[3:]))
        elif key == "a":
            name, sep, attr_value = value.partition(":")
            attribute = (name, attr_value if sep else None)
            (media[-1].attributes if media else session_attributes).append(attribute)
    if not media:
        raise SdpError("the SDP has no media sections")
    return SessionDescription(session_attributes, media)


@dataclass(frozen=True)
class Codec:
    payload_type: int
    name: str
    clock_rate: int
    channels: int | None = None
    fmtp: str | None = None
    rtcp_fb: tuple[str, ...] = ()
    rtx_payload_type: int | None = None


DEFAULT_OPUS = Codec(111, "opus", 48000, 2, "minptime=10;useinbandfec=1")
DEFAULT_VP8 = Codec(96, "VP8", 90000, None, None, VIDEO_FEEDBACK)


@dataclass
class RemoteTransport:
    ice_ufrag: str
    ice_pwd: str
    fingerprint_algorithm: str
    fingerprint: str
    setup: str
    candidates: list[str]


@dataclass
class OfferedMedia:
    """One m-section of the page's offer, as the SFU accepts it."""

    mid: str
    kind: str
    proto: str
    formats: list[str]
    codec: Codec | None  # None: rejected
    extensions: list[tuple[int, str]]
    ssrcs: list[int]
    direction: str  # the SFU's direction in its answer
    msid: str | None
    rids: list[str] = field(default_factory=list)  # simulcast layers, lowest first


def _choose_codec(section: MediaSection) -> Codec | None:
    rtpmap = section.rtpmap()
    fmtp = section.fmtp()
    wanted = "opus" if section.kind == "audio" else "vp8"
    for fmt in section.formats:
        if not fmt.isdigit():
            continue
        pt = int(fmt)
        entry = rtpmap.get(pt)
        if entry is None or entry[0].lower() != wanted:
            continue
        offered_fb = section.rtcp_fb(pt)
        if section.kind == "audio":
            feedback = tuple(f for f in AUDIO_FEEDBACK if f in offered_fb)
            return Codec(
                pt, "opus", entry[1], entry[2] or 2, fmtp.get(pt) or DEFAULT_OPUS.fmtp, feedback
            )
        rtx = next(
            (
                other
                for other, (name, _, _) in rtpmap.items()
                if name.lower() == "rtx" and fmtp.get(other, "").replace(" ", "") == f"apt={pt}"
            ),
            None,
        )
        feedback = tuple(f for f in VIDEO_FEEDBACK if f in offered_fb)
        return Codec(pt, "VP8", entry[1], None, PUBLISH_VP8_FMTP, feedback, rtx)
    return None


def _send_rids(section: MediaSection) -> list[str]:
    """The simulcast layers the page sends, lowest first, as its a=simulcast lists them."""
    rids = [
        v.split()[0]
        for v in section.values("rid")
        if len(v.split()) >= 2 and v.split()[1] == "send"
    ]
    simulcast = section.value("simulcast")
    if not rids or not simulcast:
        return []
    parts = simulcast.split()
    if len(parts) < 2 or parts[0] != "send":
        return []
    ordered = [alternatives.split(",")[0].lstrip("~") for alternatives in parts[1].split(";")]
    return [rid for rid in ordered if rid in rids][:3]


def read_offer(description: SessionDescription) -> tuple[RemoteTransport, list[OfferedMedia]]:
    """Check the page's offer and decide, per m-section, what the SFU accepts."""
    first = description.media[0]
    ufrag = description.media_value(first, "ice-ufrag")
    pwd = description.media_value(first, "ice-pwd")
    fingerprint = description.media_value(first, "fingerprint")
    if not ufrag or not pwd:
        raise SdpError("the SDP has no ICE credentials")
    if not fingerprint or " " not in fingerprint:
        raise SdpError("the SDP has no DTLS fingerprint")
    algorithm, _, value = fingerprint.partition(" ")
    if not description.media_value(first, "rtcp-mux") and not first.has("rtcp-mux"):
        raise SdpError("the SDP must use rtcp-mux")
    bundle = description.bundle_mids
    offered: list[OfferedMedia] = []
    seen_mids: set[str] = set()
    for section in description.media:
        mid = section.mid
        if not mid or mid in seen_mids:
            raise SdpError("every m-section needs a unique a=mid")
        seen_mids.add(mid)
        codec: Codec | None = None
        extensions: list[tuple[int, str]] = []
        direction = "inactive"
        if section.kind in ("audio", "video") and section.port != 0:
            codec = _choose_codec(section)
            offered_ext = section.extmap()
            extensions = [
                (offered_ext[uri], uri)
                for uri in SUPPORTED_EXTENSIONS[section.kind]
                if uri in offered_ext
            ]
            if section.direction in ("sendonly", "sendrecv"):
                direction = "recvonly"
        if bundle and mid not in bundle and codec is not None:
            raise SdpError("every media section must be in the BUNDLE group")
        msid_value = section.value("msid")
        offered.append(
            OfferedMedia(
                mid=mid,
                kind=section.kind,
                proto=section.proto,
                formats=section.formats,
                codec=codec,
                extensions=extensions,
                ssrcs=section.ssrcs(),
                direction=direction if codec else "inactive",
                msid=msid_value,
                rids=_send_rids(section) if section.kind == "video" and codec else [],
            )
        )
    if not any(m.codec is not None for m in offered):
        raise SdpError("the SDP has no usable audio (Opus) or video (VP8)")
    transport = RemoteTransport(
        ice_ufrag=ufrag,
        ice_pwd=pwd,
        fingerprint_algorithm=algorithm.lower(),
        fingerprint=value.strip(),
        setup=description.media_value(first, "setup") or "actpass",
        candidates=[v for s in description.media for v in s.values("candidate")],
    )
    return transport, offered


@dataclass
class LocalTransport:
    ice_ufrag: str
    ice_pwd: str
    fingerprint_algorithm: str
    fingerprint: str
    candidates: list[str]  # "candidate:..." values


@dataclass
class LocalMediaLine:
    """One m-line as the SFU describes it, in its answer or its later offers."""

    mid: str
    kind: str
    direction: str
    codec: Codec | None  # None: rejected (port 0)
    extensions: list[tuple[int, str]] = field(default_factory=list)
    ssrc: int | None = None
    cname: str | None = None
    stream_id: str | None = None
    track_id: str | None = None
    proto: str = "UDP/TLS/RTP/SAVPF"
    formats: list[str] = field(default_factory=list)
    rids: list[str] = field(default_factory=list)  # simulcast layers the SFU receives


def build_sdp(
    *,
    session_id: int,
    version: int,
    setup: str,
    transport: LocalTransport,
    lines: list[LocalMediaLine],
) -> str:
    bundle = [line.mid for line in lines if line.codec is not None]
    out = [
        "v=0",
        f"o=- {session_id} {version} IN IP4 0.0.0.0",
        "s=-",
        "t=0 0",
    ]
    if bundle:
        out.append("a=group:BUNDLE " + " ".join(bundle))
    out.append("a=msid-semantic: WMS *")
    for line in lines:
        if line.codec is None:
            formats = " ".join(line.formats) or "0"
            out += [f"m={line.kind} 0 {line.proto} {formats}", "c=IN IP4 0.0.0.0"]
            out += [f"a=mid:{line.mid}", "a=inactive"]
            continue
        codec = line.codec
        formats = str(codec.payload_type)
        if codec.rtx_payload_type is not None:
            formats += f" {codec.rtx_payload_type}"
        out += [
            f"m={line.kind} 9 UDP/TLS/RTP/SAVPF {formats}",
            "c=IN IP4 0.0.0.0",
            "a=rtcp:9 IN IP4 0.0.0.0",
            f"a=ice-ufrag:{transport.ice_ufrag}",
            f"a=ice-pwd:{transport.ice_pwd}",
            f"a=fingerprint:{transport.fingerprint_algorithm} {transport.fingerprint}",
            f"a=setup:{setup}",
            f"a=mid:{line.mid}",
        ]
        out += [f"a=extmap:{ext_id} {uri}" for ext_id, uri in line.extensions]
        out.append(f"a={line.direction}")
        if line.direction in ("sendonly", "sendrecv") and line.stream_id and line.track_id:
            out.append(f"a=msid:{line.stream_id} {line.track_id}")
        out += ["a=rtcp-mux", "a=rtcp-rsize"]
        channels = f"/{codec.channels}" if codec.channels else ""
        out.append(f"a=rtpmap:{codec.payload_type} {codec.name}/{codec.clock_rate}{channels}")
        out += [f"a=rtcp-fb:{codec.payload_type} {fb}" for fb in codec.rtcp_fb]
        if codec.fmtp:
            out.append(f"a=fmtp:{codec.payload_type} {codec.fmtp}")
        if codec.rtx_payload_type is not None:
            out.append(f"a=rtpmap:{codec.rtx_payload_type} rtx/{codec.clock_rate}")
            out.append(f"a=fmtp:{codec.rtx_payload_type} apt={codec.payload_type}")
        if line.rids and line.direction in ("recvonly", "sendonly"):
            way = "recv" if line.direction == "recvonly" else "send"
            out += [f"a=rid:{rid} {way}" for rid in line.rids]
            out.append(f"a=simulcast:{way} " + ";".join(line.rids))
        if line.ssrc is not None and line.direction in ("sendonly", "sendrecv"):
            out.append(f"a=ssrc:{line.ssrc} cname:{line.cname or 'balie'}")
            if line.stream_id and line.track_id:
                out.append(f"a=ssrc:{line.ssrc} msid:{line.stream_id} {line.track_id}")
        out += [f"a={candidate}" for candidate in transport.candidates]
        out.append("a=end-of-candidates")
    return "\r\n".join(out) + "\r\n"


def read_answer(description: SessionDescription, offered_mids: list[str]) -> None:
    """Check that the page's answer fits the SFU's offer."""
    mids = [section.mid for section in description.media]
    if mids != offered_mids:
        raise SdpError("the answer's m-sections do not match the offer")
