"""A synthetic participant: joins like a browser, publishes generated RTP, receives undecoded.

It uses the same signalling as the web page and aiortc's ICE/DTLS/SRTP (through the SFU's adapter),
so everything between the socket and the forwarding path is exercised for real. It publishes Opus-
shaped audio (with audio levels) and VP8-shaped video, optionally as three simulcast layers with
rids, RTX and transport-wide sequence numbers, like Chrome. Every payload it sends ends in a CRC-32
of the rest, so a receiver can prove that the SFU forwarded the payload byte for byte (a
transcoding server could not keep it); the byte before the CRC names the simulcast layer.
"""

from __future__ import annotations

import asyncio
import json
import os
import struct
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp

from loadtest.stats import StreamStats
from sfu.aiortc_adapter import MediaTransport
from sfu.rtcp import (
    RTCP_RTPFB,
    RTPFB_TWCC,
    FullIntraRequest,
    Nack,
    PictureLossIndication,
    ReportBlock,
    RtcpError,
    SenderReport,
    build_pli,
    build_receiver_report,
    build_sdes_cname,
    build_sender_report,
    parse_rtcp,
)
from sfu.rtp import build_rtp, parse_rtp
from sfu.sdp import (
    AUDIO_LEVEL_URI,
    DEFAULT_OPUS,
    DEFAULT_VP8,
    MID_URI,
    REPAIRED_RID_URI,
    RID_URI,
    TWCC_URI,
    Codec,
    LocalMediaLine,
    LocalTransport,
    SessionDescription,
    build_sdp,
    parse_sdp,
)
from sfu.sender_report import ntp_from_unix, ntp_to_unix
from sfu.vp8 import vp8_is_keyframe

if TYPE_CHECKING:
    from loadtest.media import MediaLibrary

AUDIO_PACKET_MS = 20
VIDEO_FRAME_MS = 40  # 25 frames per second
RTX_PAYLOAD_TYPE = 97
AUDIO_LEVEL_ID, MID_ID, TWCC_ID, RID_ID, REPAIRED_RID_ID = 1, 4, 5, 10, 11
EXTENSION_PACKETS = 10  # like Chrome: mid and rid only in the first packets of a stream


@dataclass(frozen=True)
class Layer:
    rid: str
    width: int
    height: int
    packets_per_frame: int
    packet_size: int


SIMULCAST_LAYERS = (
    Layer("q", 320, 180, 1, 600),
    Layer("h", 640, 360, 2, 1000),
    Layer("f", 1280, 720, 4, 1150),
)
SINGLE_LAYER = (Layer("", 640, 480, 3, 1100),)


VP8_DESCRIPTOR_SIZE = 4  # X, I and a 15-bit picture id: the part an SFU may rewrite


def sealed_payload(prefix: bytes, size: int, tail: bytes = b"", unsealed: int = 0) -> bytes:
    """`prefix` + filler + `tail` + CRC-32 of everything before it but the first `unsealed`."""
    body = prefix + os.urandom(max(0, size - len(prefix) - len(tail) - 4)) + tail
    return body + struct.pack("!I", zlib.crc32(body[unsealed:]))


def payload_intact(payload: bytes, unsealed: int = 0) -> bool:
    """Whether the payload (but its first `unsealed` bytes) is exactly what was sent."""
    if len(payload) < unsealed + 4:
        return False
    (sealed,) = struct.unpack("!I", payload[-4:])
    return bool(zlib.crc32(payload[unsealed:-4]) == sealed)


def vp8_picture_id(payload: bytes) -> int | None:
    """The 15-bit picture id of a descriptor written by this module (X, I and M set)."""
    if len(payload) >= 4 and payload[0] & 0x80 and payload[1] & 0x80 and payload[2] & 0x80:
        return ((payload[2] & 0x7F) << 8) | payload[3]
    return None


@dataclass
class OutgoingStream:
    """One RTP stream this participant sends (audio, or one video layer)."""

    kind: str
    ssrc: int
    payload_type: int
    clock_rate: int
    layer: int = 0
    spec: Layer | None = None
    rtx_ssrc: int | None = None
    seq: int = field(default_factory=lambda: int.from_bytes(os.urandom(2), "big"))
    rtx_seq: int = 0
    ts_base: int = field(default_factory=lambda: int.from_bytes(os.urandom(4), "big"))
    timestamp: int = 0
    picture_id: int = field(default_factory=lambda: int.from_bytes(os.urandom(2), "big") & 0x7FFF)
    packets_sent: int = 0
    octets_sent: int = 0
    keyframe_wanted: bool = True
    active: bool = True
    sent: dict[int, tuple[bytes, bool, int]] = field(default_factory=dict)


@dataclass
class ReceivedStream:
    """What arrived for one remote track."""

    mid: str
    kind: str
    participant_id: str
    ssrc: int | None = None
    packets: int = 0
    bytes: int = 0
    corrupt_payloads: int = 0
    keyframes: int = 0
    highest_seq: int | None = None
    out_of_order: int = 0
    sender_reports: int = 0
    last_timestamp: int | None = None
    # SR RTP timestamp minus the newest packet's timestamp when the SR arrived (signed)
    sender_report_offsets: list[int] = field(default_factory=list)
    seqs: list[int] = field(default_factory=list)
    layers: Counter[int] = field(default_factory=Counter)
    last_layer: int | None = None
    last_picture_id: int | None = None
    picture_id_jumps: int = 0
    last_packet_time: float = 0.0
    stats: StreamStats | None = None


class SyntheticParticipant:
    """Joins a room through `/rtc`, publishes audio and VP8-shaped video, counts what it gets."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        host_address: str = "127.0.0.1",
        publish_audio: bool = True,
        publish_video: bool = True,
        simulcast: bool = False,
        offer_delay_s: float = 0.0,
        audio_level_dbov: int = 30,
        media: MediaLibrary | None = None,
    ) -> None:
        """`media`: real pre-encoded VP8/Opus to send; without it, CRC-sealed test payloads."""
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.publish_audio = publish_audio
        self.publish_video = publish_video
        self.simulcast = simulcast
        self.offer_delay_s = offer_delay_s
        self.audio_level_dbov = audio_level_dbov
        self.media = media
        self._frame_index: dict[int, int] = {}
        self.transport = MediaTransport(
            (host_address,), self._on_rtp, self._on_rtcp, self._on_state, controlling=True
        )
        self.audio = OutgoingStream("audio", _random_ssrc(), DEFAULT_OPUS.payload_type, 48000)
        layers = SIMULCAST_LAYERS if simulcast else SINGLE_LAYER
        self.video_layers = [
            OutgoingStream(
                "video",
                _random_ssrc(),
                DEFAULT_VP8.payload_type,
                90000,
                layer=index,
                spec=spec,
                rtx_ssrc=_random_ssrc(),
            )
            for index, spec in enumerate(layers)
        ]
        self._outgoing = {s.ssrc: s for s in [self.audio, *self.video_layers]}
        self.cname = os.urandom(6).hex()
        self.participant_id: str | None = None
        self.joined = asyncio.Event()
        self.connected = asyncio.Event()
        self.messages: list[dict[str, Any]] = []
        self.errors: list[dict[str, Any]] = []
        self.streams: dict[str, ReceivedStream] = {}  # by mid
        self._streams_by_ssrc: dict[int, ReceivedStream] = {}
        self.plis_received = 0
        self.nacks_received = 0
        self.twcc_feedbacks = 0
        self._transport_seq = 0
        self._reported: dict[int, tuple[int, int]] = {}  # ssrc -> (expected, received) reported
        self._media_clock_start = 0.0
        self._candidates: list[str] = []
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._lines: list[LocalMediaLine] = []
        self._closed = False

    @property
    def audio_ssrc(self) -> int:
        return self.audio.ssrc

    @property
    def video_ssrc(self) -> int:
        return self.video_layers[0].ssrc

    # -- signalling --------------------------------------------------------------------------

    async def join(self, join_timeout_s: float = 10.0) -> None:
        self._session = aiohttp.ClientSession()
        ws_url = self.base_url.replace("http://", "ws://").replace("https://", "wss://") + "/rtc"
        self._ws = await self._session.ws_connect(ws_url, timeout=aiohttp.ClientWSTimeout(10))
        await self._ws.send_json({"type": "join", "token": self.token})
        self._tasks.append(asyncio.create_task(self._read_loop()))
        deadline = time.monotonic() + join_timeout_s
        while not self.joined.is_set():
            if self.errors:
                raise RuntimeError(f"join refused: {self.errors[0].get('code')}")
            if time.monotonic() > deadline or (self._ws is not None and self._ws.closed):
                raise TimeoutError("no answer to join")
            await asyncio.sleep(0.02)

    async def _read_loop(self) -> None:
        assert self._ws is not None
        async for frame in self._ws:
            if frame.type != aiohttp.WSMsgType.TEXT:
                break
            message = json.loads(frame.data)
            self.messages.append(message)
            await self._handle(message)

    async def _send(self, message: dict[str, Any]) -> None:
        if self._ws is not None and not self._ws.closed:
            await self._ws.send_json(message)

    async def _handle(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "joined":
            self.participant_id = message["participant"]["id"]
            self.joined.set()
            if self.offer_delay_s:
                await asyncio.sleep(self.offer_delay_s)
            await self._send_offer()
        elif kind == "answer":
            await self._accept_answer(message["sdp"])
        elif kind == "offer":
            await self._answer_offer(message["sdp"], message.get("tracks", {}))
        elif kind == "publisher_layers":
            wanted = message.get("active", {})
            for stream in self.video_layers:
                if stream.spec is not None and stream.spec.rid in wanted:
                    was_active = stream.active
                    stream.active = bool(wanted[stream.spec.rid])
                    if stream.active and not was_active:
                        stream.keyframe_wanted = True
        elif kind == "error":
            self.errors.append(message)

    async def _send_offer(self) -> None:
        self._candidates = await self.transport.gather()
        # A participant that publishes nothing still offers both m-lines (inactive), like a
        # page without camera and microphone.
        self._lines.append(
            LocalMediaLine(
                mid="0",
                kind="audio",
                direction="sendonly" if self.publish_audio else "inactive",
                codec=DEFAULT_OPUS,
                extensions=[
                    (AUDIO_LEVEL_ID, AUDIO_LEVEL_URI),
                    (MID_ID, MID_URI),
                    (TWCC_ID, TWCC_URI),
                ],
                ssrc=self.audio.ssrc if self.publish_audio else None,
                cname=self.cname,
                stream_id="synthetic",
                track_id="audio",
            )
        )
        video = Codec(
            96,
            "VP8",
            90000,
            None,
            None,
            DEFAULT_VP8.rtcp_fb,
            RTX_PAYLOAD_TYPE,
        )
        rids = [s.spec.rid for s in self.video_layers if s.spec is not None and s.spec.rid]
        self._lines.append(
            LocalMediaLine(
                mid=str(len(self._lines)),
                kind="video",
                direction="sendonly" if self.publish_video else "inactive",
                codec=video,
                extensions=[
                    (MID_ID, MID_URI),
                    (TWCC_ID, TWCC_URI),
                    (RID_ID, RID_URI),
                    (REPAIRED_RID_ID, REPAIRED_RID_URI),
                ],
                ssrc=None if rids or not self.publish_video else self.video_layers[0].ssrc,
                cname=self.cname,
                stream_id="synthetic",
                track_id="video",
                rids=rids if self.publish_video else [],
            )
        )
        await self._send({"type": "offer", "sdp": self._describe("actpass")})

    def _describe(self, setup: str) -> str:
        algorithm, fingerprint = self.transport.fingerprint
        return build_sdp(
            session_id=1,
            version=len(self.messages),
            setup=setup,
            transport=LocalTransport(
                self.transport.ice_ufrag,
                self.transport.ice_pwd,
                algorithm,
                fingerprint,
                self._candidates,
            ),
            lines=self._lines,
        )

    def _check(self, description: SessionDescription) -> bool:
        """Reject what a browser would reject: duplicate or missing mids."""
        mids = [section.mid for section in description.media]
        if None in mids or len(set(mids)) != len(mids):
            self.errors.append({"code": "bad_remote_sdp", "message": f"mids {mids}"})
            return False
        return True

    async def _accept_answer(self, sdp: str) -> None:
        description = parse_sdp(sdp)
        if not self._check(description):
            return
        first = description.media[0]
        fingerprint = description.media_value(first, "fingerprint") or ""
        algorithm, _, value = fingerprint.partition(" ")
        self.transport.start(
            description.media_value(first, "ice-ufrag") or "",
            description.media_value(first, "ice-pwd") or "",
            algorithm,
            value,
        )
        for candidate in first.values("candidate"):
            await self.transport.add_remote_candidate(candidate)
        await self.transport.end_of_candidates()

    async def _answer_offer(self, sdp: str, tracks: dict[str, dict[str, str]]) -> None:
        description = parse_sdp(sdp)
        if not self._check(description):
            return
        lines: list[LocalMediaLine] = []
        reverse = {"sendonly": "recvonly", "recvonly": "sendonly"}
        for section in description.media:
            mid = section.mid or ""
            existing = next((line for line in self._lines if line.mid == mid), None)
            if existing is not None:
                lines.append(existing)
                continue
            rtpmap = section.rtpmap()
            codec: Codec | None = None
            if section.port and section.formats and section.formats[0].isdigit():
                pt = int(section.formats[0])
                name, rate, channels = rtpmap.get(pt, ("opus", 48000, 2))
                codec = Codec(pt, name, rate, channels)
            lines.append(
                LocalMediaLine(
                    mid=mid,
                    kind=section.kind,
                    direction=reverse.get(section.direction, "inactive"),
                    codec=codec,
                    proto=section.proto,
                    formats=section.formats,
                )
            )
            info = tracks.get(mid)
            ssrcs = section.ssrcs()
            if info is not None and section.direction == "sendonly":
                stream = self.streams.get(mid)
                if stream is None:
                    stream = ReceivedStream(mid, section.kind, info["participant_id"])
                    stream.stats = StreamStats(
                        90000 if section.kind == "video" else 48000, section.kind == "video"
                    )
                    self.streams[mid] = stream
                if ssrcs:
                    stream.ssrc = ssrcs[0]
                    self._streams_by_ssrc[ssrcs[0]] = stream
        # keep the publish lines' state but adopt the SFU's order
        self._lines = lines
        await self._send({"type": "answer", "sdp": self._describe("passive")})

    # -- media -------------------------------------------------------------------------------

    def _on_state(self, state: str) -> None:
        if state == "connected":
            self.connected.set()
            self._tasks.append(asyncio.create_task(self._publish_loop()))

    def _on_rtp(self, data: bytes, arrival_time_ms: int) -> None:
        packet = parse_rtp(data)
        if packet is None:
            return
        stream = self._streams_by_ssrc.get(packet.ssrc)
        if stream is None:
            return
        stream.packets += 1
        stream.bytes += len(packet.payload)
        stream.last_packet_time = time.monotonic()
        payload = packet.payload
        if stream.stats is not None:
            stream.stats.packet(
                packet.seq,
                packet.timestamp,
                packet.marker,
                stream.kind == "video" and vp8_is_keyframe(payload),
                time.time(),
            )
        if self.media is not None:
            return  # real media: no sealed test payloads to check
        unsealed = VP8_DESCRIPTOR_SIZE if stream.kind == "video" else 0
        if not payload_intact(payload, unsealed):
            stream.corrupt_payloads += 1
        if stream.kind == "video":
            if vp8_is_keyframe(payload):
                stream.keyframes += 1
            if len(payload) >= 5:
                layer = payload[-5]
                stream.layers[layer] += 1
                stream.last_layer = layer
            picture_id = vp8_picture_id(payload)
            newest = (
                stream.highest_seq is None or ((packet.seq - stream.highest_seq) & 0xFFFF) < 0x8000
            )
            if picture_id is not None and newest:
                previous = stream.last_picture_id
                if previous is not None and ((picture_id - previous) & 0x7FFF) > 1:
                    stream.picture_id_jumps += 1
                stream.last_picture_id = picture_id
        if stream.highest_seq is not None and ((packet.seq - stream.highest_seq) & 0xFFFF) > 0x8000:
            stream.out_of_order += 1
        else:
            stream.highest_seq = packet.seq
        stream.last_timestamp = packet.timestamp
        if len(stream.seqs) < 20000:
            stream.seqs.append(packet.seq)

    def _on_rtcp(self, data: bytes) -> None:
        self._count_twcc(data)
        try:
            for message in parse_rtcp(data):
                if isinstance(message, PictureLossIndication):
                    self._keyframe_request(message.media_ssrc)
                elif isinstance(message, FullIntraRequest):
                    for ssrc in message.media_ssrcs:
                        self._keyframe_request(ssrc)
                elif isinstance(message, Nack):
                    self.nacks_received += 1
                    outgoing = self._outgoing.get(message.media_ssrc)
                    if outgoing is not None:
                        for seq in message.lost:
                            self._retransmit(outgoing, seq)
                elif isinstance(message, SenderReport):
                    stream = self._streams_by_ssrc.get(message.ssrc)
                    if stream is not None:
                        stream.sender_reports += 1
                        if stream.stats is not None:
                            stream.stats.sender_report(
                                ntp_to_unix(message.ntp_timestamp), message.rtp_timestamp
                            )
                        if stream.last_timestamp is not None:
                            offset = (message.rtp_timestamp - stream.last_timestamp) & 0xFFFFFFFF
                            if offset >= 1 << 31:
                                offset -= 1 << 32
                            stream.sender_report_offsets.append(offset)
        except RtcpError:
            pass

    def _count_twcc(self, data: bytes) -> None:
        offset = 0
        while offset + 4 <= len(data):
            if data[offset + 1] == RTCP_RTPFB and data[offset] & 0x1F == RTPFB_TWCC:
                self.twcc_feedbacks += 1
            offset += 4 * (struct.unpack_from("!H", data, offset + 2)[0] + 1)

    def _keyframe_request(self, ssrc: int) -> None:
        outgoing = self._outgoing.get(ssrc)
        if outgoing is not None and outgoing.kind == "video":
            self.plis_received += 1
            outgoing.keyframe_wanted = True

    def _extensions(
        self, stream: OutgoingStream, repaired: bool = False
    ) -> list[tuple[int, bytes]]:
        self._transport_seq = (self._transport_seq + 1) & 0xFFFF
        extensions = [(TWCC_ID, struct.pack("!H", self._transport_seq))]
        if stream.kind == "audio":
            level = self.audio_level_dbov
            extensions.append((AUDIO_LEVEL_ID, bytes([(0x80 if level < 127 else 0) | level])))
        if stream.packets_sent < EXTENSION_PACKETS or repaired:
            mid = "0" if stream.kind == "audio" else "1"
            extensions.append((MID_ID, mid.encode()))
            if stream.spec is not None and stream.spec.rid:
                rid_id = REPAIRED_RID_ID if repaired else RID_ID
                extensions.append((rid_id, stream.spec.rid.encode()))
        return extensions

    def _send_packet(self, stream: OutgoingStream, payload: bytes, marker: bool) -> None:
        seq = stream.seq & 0xFFFF
        stream.seq += 1
        packet = build_rtp(
            payload_type=stream.payload_type,
            seq=seq,
            timestamp=stream.timestamp,
            ssrc=stream.ssrc,
            payload=payload,
            marker=marker,
            extensions=self._extensions(stream),
        )
        stream.sent[seq] = (payload, marker, stream.timestamp)
        stream.sent.pop((seq - 512) & 0xFFFF, None)
        stream.packets_sent += 1
        stream.octets_sent += len(payload)
        self.transport.send_rtp(packet)

    def _retransmit(self, stream: OutgoingStream, seq: int) -> None:
        """Resend in RTX (RFC 4588) for video, as Chrome does; audio is not retransmitted."""
        kept = stream.sent.get(seq)
        if kept is None or stream.rtx_ssrc is None:
            return
        payload, marker, timestamp = kept
        stream.rtx_seq = (stream.rtx_seq + 1) & 0xFFFF
        self.transport.send_rtp(
            build_rtp(
                payload_type=RTX_PAYLOAD_TYPE,
                seq=stream.rtx_seq,
                timestamp=timestamp,
                ssrc=stream.rtx_ssrc,
                payload=struct.pack("!H", seq) + payload,
                marker=marker,
                extensions=self._extensions(stream, repaired=True),
            )
        )

    async def _publish_loop(self) -> None:
        """Audio every 20 ms, video frames every 40 ms; timestamps follow the send schedule."""
        start = time.monotonic()
        self._media_clock_start = start
        tick = 0
        next_report = start
        while not self._closed:
            if self.publish_audio:
                self.audio.timestamp = self.audio.ts_base + tick * 960
                if self.media is not None:
                    frames = self.media.audio_frames
                    self._send_packet(self.audio, frames[tick % len(frames)].data, False)
                else:
                    self._send_packet(self.audio, sealed_payload(b"\xfc", 80), False)
            if self.publish_video and tick % (VIDEO_FRAME_MS // AUDIO_PACKET_MS) == 0:
                for stream in self.video_layers:
                    if stream.active:
                        stream.timestamp = stream.ts_base + tick * 90 * AUDIO_PACKET_MS
                        self._send_frame(stream)
            now = time.monotonic()
            if now >= next_report:
                next_report = now + 1.0
                self._send_sender_reports(now)
            tick += 1
            await asyncio.sleep(max(0.0, start + tick * AUDIO_PACKET_MS / 1000 - time.monotonic()))

    def _send_frame(self, stream: OutgoingStream) -> None:
        spec = stream.spec
        assert spec is not None
        keyframe = stream.keyframe_wanted
        stream.keyframe_wanted = False
        stream.picture_id = (stream.picture_id + 1) & 0x7FFF
        if self.media is not None:
            self._send_encoded_frame(stream, keyframe)
            return
        for index in range(spec.packets_per_frame):
            descriptor = bytes(
                [
                    0x90 if index == 0 else 0x80,
                    0x80,
                    0x80 | (stream.picture_id >> 8),
                    stream.picture_id & 0xFF,
                ]
            )
            header = b""
            if index == 0:
                header = b"\x00\x00\x00" if keyframe else b"\x01\x00\x00"
                if keyframe:
                    header += b"\x9d\x01\x2a" + struct.pack("<HH", spec.width, spec.height)
            self._send_packet(
                stream,
                sealed_payload(
                    descriptor + header,
                    spec.packet_size,
                    bytes([stream.layer]),
                    unsealed=VP8_DESCRIPTOR_SIZE,
                ),
                index == spec.packets_per_frame - 1,
            )

    def _send_encoded_frame(self, stream: OutgoingStream, keyframe: bool) -> None:
        """The next pre-encoded frame of this layer; on a keyframe request, the next keyframe."""
        assert self.media is not None
        layer = self.media.video_layers[min(stream.layer, len(self.media.video_layers) - 1)]
        frames = layer.frames
        index = self._frame_index.get(stream.ssrc, 0)
        if keyframe:
            for step in range(len(frames)):
                if frames[(index + step) % len(frames)].keyframe:
                    index += step
                    break
        frame = frames[index % len(frames)]
        self._frame_index[stream.ssrc] = index + 1
        from loadtest.media import vp8_payloads

        payloads = vp8_payloads(frame.data, stream.picture_id)
        for position, payload in enumerate(payloads):
            self._send_packet(stream, payload, position == len(payloads) - 1)

    def _send_sender_reports(self, now: float) -> None:
        """Sender reports that map the media clock (send schedule) to wall-clock time."""
        elapsed = now - self._media_clock_start
        report = b""
        for stream in self._outgoing.values():
            if stream.packets_sent:
                rtp_timestamp = stream.ts_base + int(elapsed * stream.clock_rate)
                report += build_sender_report(
                    stream.ssrc,
                    ntp_from_unix(time.time()),
                    rtp_timestamp,
                    stream.packets_sent,
                    stream.octets_sent,
                )
        if report:
            self.transport.send_rtcp(report + build_sdes_cname(self.audio.ssrc, self.cname))
        else:
            # Like a browser that only receives: receiver reports, without which a server takes
            # the connection for dead after a few seconds.
            self.transport.send_rtcp(
                self._receiver_report() + build_sdes_cname(self.audio.ssrc, self.cname)
            )

    def _receiver_report(self) -> bytes:
        blocks = []
        for stream in self.streams.values():
            stats = stream.stats
            if stream.ssrc is None or stats is None or stats.highest_ext_seq is None:
                continue
            expected, received = stats.expected, stats.packets
            last_expected, last_received = self._reported.get(stream.ssrc, (0, 0))
            self._reported[stream.ssrc] = (expected, received)
            interval_expected = expected - last_expected
            interval_lost = interval_expected - (received - last_received)
            fraction = 0
            if interval_expected > 0 and interval_lost > 0:
                fraction = (interval_lost << 8) // interval_expected
            blocks.append(
                ReportBlock(
                    stream.ssrc,
                    fraction,
                    stats.lost,
                    stats.highest_ext_seq - (1 << 16),
                    int(stats.jitter),
                    0,
                    0,
                )
            )
        return build_receiver_report(self.audio.ssrc, blocks)

    def request_keyframe(self, mid: str) -> None:
        stream = self.streams.get(mid)
        if stream is not None and stream.ssrc is not None:
            self.transport.send_rtcp(build_pli(self.audio.ssrc, stream.ssrc))

    async def send_layout(self, layout: dict[str, tuple[int, int, bool]]) -> None:
        tracks = {mid: {"width": w, "height": h, "visible": v} for mid, (w, h, v) in layout.items()}
        await self._send({"type": "video_layout", "tracks": tracks})

    async def send_raw(self, message: dict[str, Any]) -> None:
        await self._send(message)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._ws is not None and not self._ws.closed:
            try:
                await self._ws.send_json({"type": "leave"})
            except ConnectionError:
                pass
            await self._ws.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        await self.transport.close()
        if self._session is not None:
            await self._session.close()


def _random_ssrc() -> int:
    return int.from_bytes(os.urandom(4), "big") or 1
